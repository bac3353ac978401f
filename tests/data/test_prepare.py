"""Tests of trainact.data.prepare: safe archive reading, subsets, the validation split, the CLI.

Everything runs on small synthetic archives built in tmp_path.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from trainact import cli
from trainact.data import cifar, download, prepare
from trainact.data.archive import ArchiveError, ForbiddenGlobalError, restricted_loads
from trainact.data.synthetic import build_synthetic_archive


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


# --------------------------------------------------------------------------------------------
# prepare


def test_prepare_keeps_archive_contents_exactly(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
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
    with pytest.raises(ArchiveError, match=re.escape(reason)) as error:
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
    with pytest.raises(ForbiddenGlobalError, match=r"os\.system"):
        restricted_loads(crafted)
    with pytest.raises(ForbiddenGlobalError, match=r"builtins\.eval"):
        restricted_loads(b"cbuiltins\neval\n(S'1'\ntR.")
    # _codecs.encode is admitted for latin-1 only (how protocol 2 stores bytes).
    with pytest.raises(ForbiddenGlobalError, match="zlib"):
        restricted_loads(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x04\x00\x00\x00zlib\x86R.")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_restricted_unpickler_loads_numpy_batches(protocol: int) -> None:
    images = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    batch = {b"data": images, "labels": [3, 7], "count": np.int64(2), b"name": b"batch"}
    loaded = restricted_loads(pickle.dumps(batch, protocol=protocol))
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
    with pytest.raises(ArchiveError, match=r"data_batch_3.*forbidden global \w+\.system"):
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
    with pytest.raises(ArchiveError, match=pattern) as error:
        prepare.prepare(archive, tmp_path / "out.npz", progress=False)
    assert "cifar-10-batches-py/test_batch" in str(error.value)


def test_prepare_reports_missing_member_and_non_archive(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
    archive = rewrite_archive(
        synthetic[0], tmp_path / "short.tar.gz", drop=("cifar-10-batches-py/data_batch_4",)
    )
    with pytest.raises(ArchiveError, match="missing member.*data_batch_4"):
        prepare.prepare(archive, tmp_path / "out.npz", progress=False)
    not_tar = tmp_path / "not.tar.gz"
    not_tar.write_bytes(b"hello")
    with pytest.raises(ArchiveError, match="not a readable tar archive"):
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


def test_prepare_holds_out_a_stratified_validation_split(tmp_path: Path, synthetic: tuple[Path, str]) -> None:
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


def test_cli_prepare_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    archive = tmp_path / "synthetic.tar.gz"
    build_synthetic_archive(archive, train_per_class=2, test_per_class=1)
    capsys.readouterr()
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
    # --params holds exactly the rule's config slice: a key of another name is refused, naming it
    # (a value that is not an integer: test_synthetic's test_cli_synthetic_errors_are_one_line).
    wrong_key = json.dumps({"seed": 2})
    assert cli.main(["prepare", "--archive", str(archive), "--params", wrong_key, "--out", "x"]) == 2
    assert "unknown key(s) ['seed']" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# an independent reader


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
