"""Tests of the data pipeline: trainact.data.download, .prepare (safe archive reading), .synthetic,
.cifar (the prepared file) and .loader.

Everything runs on small synthetic archives built in tmp_path; HTTP tests use a loopback
server (127.0.0.1, port 0) that can honour or ignore Range and break off mid-transfer.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import socket
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from trainact.data import cifar

from trainact import cli

from trainact.data import download

from trainact.data import loader

from trainact.data import prepare
from trainact.data.synthetic import build_synthetic_archive

# md5 of build_synthetic_archive() with default arguments. It must not change between runs,
# machines or numpy versions; update it only together with a deliberate change of the generator.
DEFAULT_SYNTHETIC_MD5 = "1efd44175d38fc3298aaf40540844ce4"


# --------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archives")


@pytest.fixture(scope="module")
def synthetic(archive_dir: Path) -> tuple[Path, str]:
    """The default synthetic archive (bytes keys) and its md5."""
    path = archive_dir / "synthetic.tar.gz"
    return path, build_synthetic_archive(path)


def read_reference(archive: Path) -> dict[str, np.ndarray | list[str]]:
    """Read an archive the way the CIFAR-10 web page tells users to (plain pickle, bytes)."""

    def load(tar: tarfile.TarFile, name: str) -> dict:
        batch = pickle.load(tar.extractfile(f"cifar-10-batches-py/{name}"), encoding="bytes")
        return {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}

    with tarfile.open(archive) as tar:
        train = [load(tar, f"data_batch_{i}") for i in range(1, 6)]
        test = load(tar, "test_batch")
        meta = load(tar, "batches.meta")
    return {
        "train_images": np.concatenate([b["data"] for b in train]).reshape(-1, 3, 32, 32),
        "train_labels": np.concatenate([np.asarray(b["labels"]) for b in train]),
        "test_images": test["data"].reshape(-1, 3, 32, 32),
        "test_labels": np.asarray(test["labels"]),
        "class_names": [n.decode() if isinstance(n, bytes) else n for n in meta["label_names"]],
    }


def rewrite_archive(
    source: Path,
    dest: Path,
    *,
    replace: dict[str, bytes] | None = None,
    extra: list[tuple[tarfile.TarInfo, bytes | None]] = (),
    drop: tuple[str, ...] = (),
) -> Path:
    """Copy ``source`` to ``dest`` with members replaced, dropped or added."""
    replace = replace or {}
    with tarfile.open(source) as src, tarfile.open(dest, "w:gz") as out:
        for member in src.getmembers():
            if member.name in drop:
                continue
            content = src.extractfile(member).read() if member.isfile() else None
            if member.name in replace:
                content = replace[member.name]
                member.size = len(content)
            out.addfile(member, io.BytesIO(content) if content is not None else None)
        for info, content in extra:
            if content is not None:
                info.size = len(content)
            out.addfile(info, io.BytesIO(content) if content is not None else None)
    return dest


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
# synthetic archive


def test_synthetic_archive_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    first = build_synthetic_archive(tmp_path / "a.tar.gz")
    second = build_synthetic_archive(tmp_path / "b.tar.gz")
    assert first == second == DEFAULT_SYNTHETIC_MD5
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert download.file_md5(tmp_path / "a.tar.gz") == first
    assert build_synthetic_archive(tmp_path / "c.tar.gz", seed=1) != first
    assert build_synthetic_archive(tmp_path / "d.tar.gz", train_per_class=21) != first


def test_synthetic_archive_has_official_layout(synthetic: tuple[Path, str]) -> None:
    path, _ = synthetic
    with tarfile.open(path) as tar:
        names = tar.getnames()
        batches = {
            name: pickle.load(tar.extractfile(name), encoding="bytes")
            for name in names
            if tar.getmember(name).isfile()
        }
    assert names == ["cifar-10-batches-py"] + [
        f"cifar-10-batches-py/{n}"
        for n in [
            "data_batch_1",
            "data_batch_2",
            "data_batch_3",
            "data_batch_4",
            "data_batch_5",
            "test_batch",
            "batches.meta",
        ]
    ]
    sizes = []
    for number in range(1, 6):
        batch = batches[f"cifar-10-batches-py/data_batch_{number}"]
        assert list(batch) == [b"batch_label", b"labels", b"data", b"filenames"]
        assert batch[b"batch_label"] == f"training batch {number} of 5".encode()
        assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape[1] == 3072
        assert len(batch[b"labels"]) == len(batch[b"filenames"]) == batch[b"data"].shape[0]
        assert all(isinstance(label, int) for label in batch[b"labels"])
        sizes.append(batch[b"data"].shape[0])
    assert sizes == [40] * 5  # 20 per class x 10 classes spread evenly
    test = batches["cifar-10-batches-py/test_batch"]
    assert test[b"data"].shape == (100, 3072)
    assert np.bincount(test[b"labels"]).tolist() == [10] * 10
    meta = batches["cifar-10-batches-py/batches.meta"]
    assert meta == {
        b"num_cases_per_batch": 40,
        b"label_names": [name.encode() for name in cifar.CLASS_NAMES],
        b"num_vis": 3072,
    }


def test_synthetic_classes_are_learnable(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
    """A tiny CNN reaches far above chance (10%) on the test split within 5 short epochs."""
    prepared = cifar.load_prepared(prepare.prepare(synthetic[0], tmp_path / "p.npz", progress=False))
    train = loader.DeviceDataset(prepared.train_images, prepared.train_labels, "cpu")
    test = loader.DeviceDataset(prepared.test_images, prepared.test_labels, "cpu")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 8 * 8, 10),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for epoch in range(5):
        for x, y in train.batches(50, shuffle=True, epoch=epoch):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
    x, y = next(test.batches(len(test)))
    with torch.no_grad():
        accuracy = (net(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.8


# --------------------------------------------------------------------------------------------
# download


def test_download_file_url_and_plain_path(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
    source, md5 = synthetic
    by_url = download.download(
        source.resolve().as_uri(), md5, tmp_path / "a" / "c.tar.gz", progress=False
    )
    assert by_url == tmp_path / "a" / "c.tar.gz"
    assert by_url.read_bytes() == source.read_bytes()
    by_path = download.download(str(source), md5.upper(), tmp_path / "b.tar.gz", progress=False)
    assert by_path.read_bytes() == source.read_bytes()
    assert not (tmp_path / "b.tar.gz.part").exists()


def test_download_skips_when_dest_has_right_md5(
    tmp_path: Path, synthetic: tuple[Path, str]
) -> None:
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


def test_download_refetches_dest_with_wrong_md5(
    tmp_path: Path, synthetic: tuple[Path, str]
) -> None:
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


def test_download_http_restarts_when_range_ignored(
    tmp_path: Path, http_server: ArchiveServer
) -> None:
    payload = http_server.payload
    http_server.honour_range = False
    dest = tmp_path / "c.tar.gz"
    (tmp_path / "c.tar.gz.part").write_bytes(b"\xff" * 1000)  # appending to it would corrupt
    download.download(http_server.url, md5_of(payload), dest, progress=False)
    assert dest.read_bytes() == payload
    assert [(r["range"], r["status"]) for r in http_server.requests] == [("bytes=1000-", 200)]


def test_download_http_restarts_when_part_is_too_long(
    tmp_path: Path, http_server: ArchiveServer
) -> None:
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


# --------------------------------------------------------------------------------------------
# prepare


def test_prepare_keeps_archive_contents_exactly(
    tmp_path: Path, synthetic: tuple[Path, str]
) -> None:
    source, md5 = synthetic
    out = prepare.prepare(source, tmp_path / "sub" / "cifar.npz", progress=False)
    reference = read_reference(source)
    with np.load(out, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(cifar.PREPARED_KEYS)
    prepared = cifar.load_prepared(out)
    for split, count in (("train", 200), ("test", 100)):
        images = getattr(prepared, f"{split}_images")
        labels = getattr(prepared, f"{split}_labels")
        assert images.dtype == np.uint8 and images.shape == (count, 3, 32, 32)
        assert labels.dtype == np.int64 and labels.shape == (count,)
        np.testing.assert_array_equal(images, reference[f"{split}_images"])
        np.testing.assert_array_equal(labels, reference[f"{split}_labels"])
    assert prepared.class_names == list(cifar.CLASS_NAMES) == reference["class_names"]
    assert prepared.source_md5 == md5
    assert [p.name for p in out.parent.iterdir()] == ["cifar.npz"]  # no temp file left


def test_prepare_accepts_str_keys(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
    """Archives rebuilt under Python 3 pickle str keys; the pixels are the same seed's."""
    str_archive = tmp_path / "str.tar.gz"
    str_md5 = build_synthetic_archive(str_archive, str_keys=True)
    with tarfile.open(str_archive) as tar:
        batch = pickle.load(tar.extractfile("cifar-10-batches-py/data_batch_1"), encoding="bytes")
    assert "data" in batch and b"data" not in batch
    from_str = cifar.load_prepared(prepare.prepare(str_archive, tmp_path / "s.npz", progress=False))
    from_bytes = cifar.load_prepared(prepare.prepare(synthetic[0], tmp_path / "b.npz", progress=False))
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(from_str, key), getattr(from_bytes, key))
    assert from_str.class_names == from_bytes.class_names
    assert from_str.source_md5 == str_md5 != from_bytes.source_md5


def _member(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    ("member", "content", "reason"),
    [
        (_member("cifar-10-batches-py/../../evil", tarfile.REGTYPE), b"x", "'..'"),
        (_member("/tmp/evil", tarfile.REGTYPE), b"x", "absolute path"),
        (
            _member("cifar-10-batches-py/shortcut", tarfile.SYMTYPE, "/etc/passwd"),
            None,
            "link to '/etc/passwd'",
        ),
        (
            _member("cifar-10-batches-py/copy", tarfile.LNKTYPE, "cifar-10-batches-py/test_batch"),
            None,
            "link to 'cifar-10-batches-py/test_batch'",
        ),
        (_member("cifar-10-batches-py/fifo", tarfile.FIFOTYPE), None, "special file"),
        (_member("cifar-10-batches-py/dev", tarfile.CHRTYPE), None, "special file"),
    ],
    ids=["dotdot", "absolute", "symlink", "hardlink", "fifo", "chardev"],
)
def test_prepare_rejects_unsafe_members(
    tmp_path: Path,
    synthetic: tuple[Path, str],
    member: tarfile.TarInfo,
    content: bytes | None,
    reason: str,
) -> None:
    archive = rewrite_archive(synthetic[0], tmp_path / "evil.tar.gz", extra=[(member, content)])
    out = tmp_path / "out.npz"
    with pytest.raises(prepare.ArchiveError, match=re.escape(reason)) as error:
        prepare.prepare(archive, out, progress=False)
    assert repr(member.name) in str(error.value)
    assert not out.exists()


class _RunsShellCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    crafted = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    with pytest.raises(prepare.ForbiddenGlobalError, match=r"os\.system"):
        prepare.restricted_loads(crafted)
    with pytest.raises(prepare.ForbiddenGlobalError, match=r"builtins\.eval"):
        prepare.restricted_loads(b"cbuiltins\neval\n(S'1'\ntR.")
    # _codecs.encode is admitted for latin-1 only (how protocol 2 stores bytes).
    with pytest.raises(prepare.ForbiddenGlobalError, match="zlib"):
        prepare.restricted_loads(
            b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x04\x00\x00\x00zlib\x86R."
        )
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_restricted_unpickler_loads_numpy_batches(protocol: int) -> None:
    images = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    batch = {b"data": images, "labels": [3, 7], "count": np.int64(2), b"name": b"batch"}
    loaded = prepare.restricted_loads(pickle.dumps(batch, protocol=protocol))
    np.testing.assert_array_equal(loaded[b"data"], images)
    assert loaded[b"data"].dtype == np.uint8
    assert loaded["labels"] == [3, 7] and loaded["count"] == 2 and loaded[b"name"] == b"batch"


def test_prepare_refuses_pickle_with_code(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": _RunsShellCommand(marker)}, protocol=2)
    archive = rewrite_archive(
        synthetic[0],
        tmp_path / "evil.tar.gz",
        replace={"cifar-10-batches-py/data_batch_3": evil},
    )
    with pytest.raises(prepare.ArchiveError, match=r"data_batch_3.*forbidden global \w+\.system"):
        prepare.prepare(archive, tmp_path / "out.npz", progress=False)
    assert not marker.exists()
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize(
    ("batch", "pattern"),
    [
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "uint8 array"),
        ({b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}, r"\(2, 1024\)"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"0\.\.9"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "one label per image"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "missing key 'labels'"),
        ([1, 2, 3], "expected a pickled dict"),
    ],
    ids=["float", "shape", "label-range", "label-count", "no-labels", "not-dict"],
)
def test_prepare_validates_batches(
    tmp_path: Path, synthetic: tuple[Path, str], batch: object, pattern: str
) -> None:
    archive = rewrite_archive(
        synthetic[0],
        tmp_path / "bad.tar.gz",
        replace={"cifar-10-batches-py/test_batch": pickle.dumps(batch, protocol=2)},
    )
    with pytest.raises(prepare.ArchiveError, match=pattern) as error:
        prepare.prepare(archive, tmp_path / "out.npz", progress=False)
    assert "cifar-10-batches-py/test_batch" in str(error.value)


def test_prepare_reports_missing_member_and_non_archive(
    tmp_path: Path, synthetic: tuple[Path, str]
) -> None:
    archive = rewrite_archive(
        synthetic[0], tmp_path / "short.tar.gz", drop=("cifar-10-batches-py/data_batch_4",)
    )
    with pytest.raises(prepare.ArchiveError, match="missing member.*data_batch_4"):
        prepare.prepare(archive, tmp_path / "out.npz", progress=False)
    not_tar = tmp_path / "not.tar.gz"
    not_tar.write_bytes(b"hello")
    with pytest.raises(prepare.ArchiveError, match="not a readable tar archive"):
        prepare.prepare(not_tar, tmp_path / "out.npz", progress=False)
    with pytest.raises(FileNotFoundError, match="absent.tar.gz"):
        prepare.prepare(tmp_path / "absent.tar.gz", tmp_path / "out.npz", progress=False)


def test_prepare_subsets(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
    source = synthetic[0]
    full = cifar.load_prepared(prepare.prepare(source, tmp_path / "full.npz", progress=False))

    def subset(name: str, **kwargs) -> cifar.PreparedData:
        return cifar.load_prepared(prepare.prepare(source, tmp_path / name, progress=False, **kwargs))

    first = subset("a.npz", train_per_class=5, test_per_class=3, seed=7)
    again = subset("b.npz", train_per_class=5, test_per_class=3, seed=7)
    other_seed = subset("c.npz", train_per_class=5, test_per_class=3, seed=8)
    train_only = subset("d.npz", train_per_class=5, seed=7)
    assert np.bincount(first.train_labels).tolist() == [5] * 10
    assert np.bincount(first.test_labels).tolist() == [3] * 10
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(first, key), getattr(again, key))
    assert not np.array_equal(first.train_images, other_seed.train_images)
    # The train subset does not depend on whether the test split is subset too.
    np.testing.assert_array_equal(first.train_images, train_only.train_images)
    np.testing.assert_array_equal(train_only.test_images, full.test_images)
    # A subset is made of original images with their labels, in the original order.
    for split in ("train", "test"):
        keep = prepare.per_class_subset(
            getattr(full, f"{split}_labels"),
            5 if split == "train" else 3,
            7,
            0 if split == "train" else 1,
        )
        assert np.all(np.diff(keep) > 0)
        np.testing.assert_array_equal(
            getattr(first, f"{split}_images"), getattr(full, f"{split}_images")[keep]
        )
        np.testing.assert_array_equal(
            getattr(first, f"{split}_labels"), getattr(full, f"{split}_labels")[keep]
        )


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"train_per_class": 21}, r"train split: class 0 \(airplane\) has only 20 images"),
        ({"test_per_class": 11}, r"test split: class 0 \(airplane\) has only 10 images"),
        ({"train_per_class": 0}, "positive integer, got 0"),
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
        (
            {"validation_per_class": 20},
            r"validation split: validation_per_class = 20 leaves no training image of class 0 "
            r"\(airplane\), which has 20; it must be less than 20",
        ),
        (
            {"train_per_class": 5, "validation_per_class": 7},
            r"validation_per_class = 7 leaves no training image of class 0 \(airplane\), which has 5",
        ),
        ({"validation_per_class": 0}, "validation_per_class must be a positive integer, got 0"),
    ],
)
def test_prepare_subset_errors(
    tmp_path: Path, synthetic: tuple[Path, str], kwargs: dict, pattern: str
) -> None:
    with pytest.raises(ValueError, match=pattern):
        prepare.prepare(synthetic[0], tmp_path / "out.npz", progress=False, **kwargs)
    assert not (tmp_path / "out.npz").exists()


def test_prepare_holds_out_a_stratified_validation_split(
    tmp_path: Path, synthetic: tuple[Path, str]
) -> None:
    """k images of each class are held out of the 20 per class; the rest stay the training set,
    both in the archive's order; together they are the training set without a split."""
    source = synthetic[0]
    full = cifar.load_prepared(prepare.prepare(source, tmp_path / "full.npz", progress=False))
    out = prepare.prepare(source, tmp_path / "split.npz", validation_per_class=4, seed=7, progress=False)
    with np.load(out, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(cifar.PREPARED_KEYS + cifar.VALIDATION_KEYS)
    split = cifar.load_prepared(out)
    assert split.has_validation and not full.has_validation
    assert np.bincount(split.validation_labels).tolist() == [4] * 10
    assert np.bincount(split.train_labels).tolist() == [16] * 10
    kept, held_out = prepare.hold_out_per_class(full.train_labels, 4, 7)
    assert np.all(np.diff(kept) > 0) and np.all(np.diff(held_out) > 0)
    assert np.intersect1d(kept, held_out).size == 0
    np.testing.assert_array_equal(np.union1d(kept, held_out), np.arange(len(full.train_labels)))
    np.testing.assert_array_equal(split.validation_images, full.train_images[held_out])
    np.testing.assert_array_equal(split.validation_labels, full.train_labels[held_out])
    np.testing.assert_array_equal(split.train_images, full.train_images[kept])
    np.testing.assert_array_equal(split.train_labels, full.train_labels[kept])
    # No image is in both (the synthetic images are all distinct), and the test split is untouched.
    as_rows = {image.tobytes() for image in split.train_images}
    assert not as_rows & {image.tobytes() for image in split.validation_images}
    np.testing.assert_array_equal(split.test_images, full.test_images)


def test_validation_split_is_seeded(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
    def split(name: str, seed: int) -> cifar.PreparedData:
        out = tmp_path / name
        return cifar.load_prepared(
            prepare.prepare(synthetic[0], out, validation_per_class=3, seed=seed, progress=False)
        )

    first, again, other_seed = split("a.npz", 5), split("b.npz", 5), split("c.npz", 6)
    for key in ("train_images", "train_labels", "validation_images", "validation_labels"):
        np.testing.assert_array_equal(getattr(first, key), getattr(again, key))
    assert not np.array_equal(first.validation_images, other_seed.validation_images)


def test_validation_split_is_independent_of_the_subset_choice(
    tmp_path: Path, synthetic: tuple[Path, str]
) -> None:
    """With train_per_class the split is held out of the subset, and the subset is the same
    with or without it: the split draws from its own stream (VALIDATION_STREAM), not from the
    subset's, so it is not simply the subset stream's first draws of each class."""
    source = synthetic[0]

    def prepared(name: str, **kwargs) -> cifar.PreparedData:
        out = prepare.prepare(source, tmp_path / name, seed=3, progress=False, **kwargs)
        return cifar.load_prepared(out)

    full = prepared("full.npz")
    subset = prepared("subset.npz", train_per_class=12)
    split = prepared("split.npz", train_per_class=12, validation_per_class=3)
    kept, held_out = prepare.hold_out_per_class(subset.train_labels, 3, 3)
    np.testing.assert_array_equal(split.train_images, subset.train_images[kept])
    np.testing.assert_array_equal(split.validation_images, subset.train_images[held_out])
    np.testing.assert_array_equal(split.validation_labels, subset.train_labels[held_out])
    np.testing.assert_array_equal(split.test_images, subset.test_images)
    first_drawn = prepare.per_class_subset(full.train_labels, 3, 3, prepare.TRAIN_STREAM)
    assert not np.array_equal(split.validation_images, full.train_images[first_drawn])


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


# --------------------------------------------------------------------------------------------
# DeviceDataset

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _identity_dataset(count: int, device: str) -> tuple[np.ndarray, loader.DeviceDataset]:
    """Random images whose label is their own index, so each batch shows where it came from."""
    images = np.random.default_rng(0).integers(0, 256, size=(count, 3, 32, 32), dtype=np.uint8)
    return images, loader.DeviceDataset(images, np.arange(count), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shuffle", [False, True])
def test_device_dataset_batches_cover_every_image_once(device: str, shuffle: bool) -> None:
    images, dataset = _identity_dataset(103, device)
    assert len(dataset) == 103
    assert dataset.images.dtype == torch.uint8 and dataset.images.device.type == device
    assert dataset.labels.dtype == torch.int64
    batches = list(dataset.batches(10, shuffle=shuffle, seed=3, epoch=2))
    assert len(batches) == dataset.num_batches(10) == 11
    assert [len(y) for _, y in batches] == [10] * 10 + [3]
    seen = torch.cat([y for _, y in batches]).cpu()
    assert sorted(seen.tolist()) == list(range(103))
    if shuffle:
        assert torch.equal(seen, dataset.permutation(3, 2))
    else:
        assert seen.tolist() == list(range(103))
    expected_x = torch.from_numpy(images).to(torch.float32) / 255
    for x, y in batches:
        assert x.dtype == torch.float32 and x.device.type == device
        assert torch.equal(x.cpu(), expected_x[y.cpu()])
    assert float(min(x.min() for x, _ in batches)) >= 0.0
    assert float(max(x.max() for x, _ in batches)) <= 1.0


def test_device_dataset_order_depends_only_on_seed_and_epoch() -> None:
    _, first = _identity_dataset(50, "cpu")
    _, second = _identity_dataset(50, "cpu")

    def order(dataset: loader.DeviceDataset, seed: int, epoch: int) -> list[int]:
        return torch.cat(
            [y for _, y in dataset.batches(8, shuffle=True, seed=seed, epoch=epoch)]
        ).tolist()

    torch.manual_seed(123)  # the global RNG must play no part
    reference = order(first, 0, 5)
    torch.manual_seed(456)
    assert order(second, 0, 5) == reference
    assert order(first, 0, 6) != reference
    assert order(first, 1, 5) != reference
    assert loader.epoch_seed(0, 5) == loader.epoch_seed(0, 5) != loader.epoch_seed(0, 6)


def test_device_dataset_drop_last_and_argument_checks() -> None:
    _, dataset = _identity_dataset(25, "cpu")
    kept = list(dataset.batches(10, shuffle=True, drop_last=True))
    assert dataset.num_batches(10, drop_last=True) == len(kept) == 2
    assert all(len(y) == 10 for _, y in kept)
    assert dataset.num_batches(5) == dataset.num_batches(5, drop_last=True) == 5
    with pytest.raises(ValueError, match="batch size must be a positive integer, got 0"):
        dataset.batches(0)
    with pytest.raises(TypeError, match="uint8"):
        loader.DeviceDataset(np.zeros((2, 3, 32, 32), np.float32), [0, 1], "cpu")
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        loader.DeviceDataset(np.zeros((2, 3, 32, 32), np.uint8), [0, 1, 2], "cpu")
    from_tensor = loader.DeviceDataset(
        torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.tensor([1, 2], dtype=torch.int32), "cpu"
    )
    assert from_tensor.labels.dtype == torch.int64


# --------------------------------------------------------------------------------------------
# CLI


def test_cli_synthetic_prepare_download(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    archive = tmp_path / "synthetic.tar.gz"
    assert (
        cli.main(
            [
                "synthetic-archive",
                "--params",
                json.dumps({"train_per_class": 4, "test_per_class": 2, "seed": 1}),
                "--out",
                str(archive),
            ]
        )
        == 0
    )
    md5 = capsys.readouterr().out.strip()
    assert md5 == download.file_md5(archive)

    fetched = tmp_path / "fetched.tar.gz"
    assert (
        cli.main(
            [
                "download",
                "--params",
                json.dumps({"url": archive.as_uri(), "md5": md5}),
                "--out",
                str(fetched),
                "--no-progress",
            ]
        )
        == 0
    )
    assert fetched.read_bytes() == archive.read_bytes()

    out = tmp_path / "cifar.npz"
    assert (
        cli.main(
            [
                "prepare",
                "--archive",
                str(fetched),
                "--params",
                json.dumps({"train_per_class": 3, "test_per_class": None, "subset_seed": 2}),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = capsys.readouterr().out.strip()
    assert summary.count("\n") == 0
    assert "train 30" in summary and "test 20" in summary and "10 classes" in summary
    assert md5 in summary
    assert np.bincount(cifar.load_prepared(out).train_labels).tolist() == [3] * 10


def test_cli_prepare_holds_out_a_validation_split(
    tmp_path: Path, synthetic: tuple[Path, str], capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "cifar.npz"
    params = json.dumps({"validation_per_class": 2, "subset_seed": 1})
    assert cli.main(["prepare", "--archive", str(synthetic[0]), "--params", params, "--out", str(out)]) == 0
    assert "train 180, validation 20, test 100 images" in capsys.readouterr().out
    too_many = json.dumps({"validation_per_class": 25})
    assert cli.main(["prepare", "--archive", str(synthetic[0]), "--params", too_many, "--out", str(out)]) == 2
    assert "validation_per_class = 25 leaves no training image" in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
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
    assert (
        cli.main(
            [
                "prepare",
                "--archive",
                str(archive),
                "--params",
                json.dumps({"train_per_class": 3}),
                "--out",
                str(tmp_path / "x.npz"),
            ]
        )
        == 2
    )
    assert "has only 2 images" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "prepare",
                "--archive",
                str(tmp_path / "none.tar.gz"),
                "--out",
                str(tmp_path / "x.npz"),
            ]
        )
        == 2
    )
    assert "none.tar.gz" in capsys.readouterr().err
    # --params holds exactly the rule's config slice: a key of another name or a value that is
    # not an integer is refused, naming it.
    wrong_key = json.dumps({"seed": 2})
    assert cli.main(["prepare", "--archive", str(archive), "--params", wrong_key, "--out", "x"]) == 2
    assert "unknown key(s) ['seed']" in capsys.readouterr().err
    text_seed = json.dumps({"seed": "1"})
    assert cli.main(["synthetic-archive", "--params", text_seed, "--out", "x"]) == 2
    assert "seed must be an integer, got '1'" in capsys.readouterr().err


def test_torchvision_reads_the_same_images_and_labels(tmp_path: Path) -> None:
    """An independent reader: torchvision's CIFAR10 on the same extracted archive gives exactly our
    prepared arrays (training batches 1-5 in order, then the test batch; HWC there, CHW here) and
    class names. Its md5 check of each batch knows only the official files, so it is skipped. The
    archive has str keys, as the official one read with torchvision's latin1 decoding and as
    Python 3 rebuilds (shared/tools) write it; torchvision cannot read bytes keys."""
    import tarfile

    from torchvision.datasets import CIFAR10

    source = tmp_path / "str-keys.tar.gz"
    build_synthetic_archive(source, str_keys=True)
    with tarfile.open(source) as archive:
        archive.extractall(tmp_path / "extracted", filter="data")
    prepared = cifar.load_prepared(prepare.prepare(source, tmp_path / "p.npz", progress=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CIFAR10, "_check_integrity", lambda self: True)
        patch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
        train = CIFAR10(str(tmp_path / "extracted"), train=True, download=False)
        test = CIFAR10(str(tmp_path / "extracted"), train=False, download=False)
    assert np.array_equal(train.data.transpose(0, 3, 1, 2), prepared.train_images)
    assert np.array_equal(np.asarray(train.targets), prepared.train_labels)
    assert np.array_equal(test.data.transpose(0, 3, 1, 2), prepared.test_images)
    assert np.array_equal(np.asarray(test.targets), prepared.test_labels)
    assert train.classes == list(prepared.class_names)
