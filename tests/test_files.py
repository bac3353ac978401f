"""trainact.files.atomic_write: the one way every command writes a result file."""

from __future__ import annotations

import errno
import os
import shutil
import stat

import pytest

from trainact.files import (
    ResultWriteError,
    atomic_write,
    describe_os_error,
    file_digest,
    file_md5,
    make_folder,
    no_space_error,
    size_text,
    write_csv_atomic,
    write_text_atomic,
)


@pytest.mark.parametrize(
    "size, text",
    [
        (184_000_000, "184 MB"),
        (5_500_000, "5.5 MB"),
        (300_000, "0.3 MB"),
        (73_000, "73 kB"),
        (999, "999 bytes"),
        (0, "0 bytes"),
    ],
)
def test_sizes_in_messages(size, text):
    assert size_text(size) == text


def test_a_full_disk_says_so_without_a_needed_size_of_nothing():
    """A writer that failed halfway on a disk with nothing left: not '(more than 0 MB needed, 0 MB free)'."""
    assert (
        str(no_space_error("r/h.csv", None, 0))
        == "no space left on device writing r/h.csv (the disk is full, 0 bytes free)"
    )
    assert str(no_space_error("r/h.csv", None, 73_000)) == (
        "no space left on device writing r/h.csv (more than 73 kB needed, 73 kB free)"
    )
    assert str(no_space_error("r/m.pt", 5_500_000, 300_000)) == (
        "no space left on device writing r/m.pt (5.5 MB needed, 0.3 MB free)"
    )


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "history.csv"
    target.write_text("old\n")

    def crash(tmp):
        tmp.write_text("half of the new fi")
        raise KeyboardInterrupt  # a Ctrl-C in the middle of the write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_new_file_replaces_the_old_one_and_has_ordinary_permissions(tmp_path):
    old_umask = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "tables" / "table1.csv", "size,acc\nsmall,0.5\n")
    finally:
        os.umask(old_umask)
    assert path == tmp_path / "tables" / "table1.csv"
    assert path.read_text() == "size,acc\nsmall,0.5\n"
    # Readable by group and others like any file the user makes (mkstemp would give 0600).
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    write_text_atomic(path, "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["table1.csv"]


def test_csv_rows_in_the_declared_columns_missing_and_none_empty(tmp_path):
    """The one CSV writer of every result: declared column order, other keys left out."""
    path = write_csv_atomic(
        tmp_path / "sub" / "history.csv",
        [{"epoch": 1, "loss": 0.5, "extra": "x"}, {"loss": None, "epoch": 2}],
        ("epoch", "loss", "status"),
    )
    assert path.read_text().splitlines() == ["epoch,loss,status", "1,0.5,", "2,,"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["history.csv"]


def test_file_digest_reads_the_whole_file_in_any_algorithm(tmp_path):
    import hashlib

    data = bytes(range(256)) * 9000  # over 2 MiB: more than one read
    (tmp_path / "f").write_bytes(data)
    assert file_digest(tmp_path / "f", "sha256") == hashlib.sha256(data).hexdigest()
    assert file_md5(tmp_path / "f") == hashlib.md5(data).hexdigest()


# ------------------------------------------------------------------------ full disk, permissions


def report_free(monkeypatch, free: int) -> None:
    """Make every filesystem report ``free`` bytes free."""
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - free, free)
    )


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_enospc_names_the_result_and_the_free_space_and_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "history.csv"
    target.write_text("old\n")
    report_free(monkeypatch, 300_000)

    def fill_the_disk(tmp):
        tmp.write_bytes(b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    with pytest.raises(ResultWriteError) as caught:
        atomic_write(target, fill_the_disk)
    assert str(caught.value) == (
        f"no space left on device writing {target} (more than 0.3 MB needed, 0.3 MB free)"
    )
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert isinstance(caught.value.__cause__, OSError)
    assert target.read_text() == "old\n" and leftovers(tmp_path) == ["history.csv"]


def test_torchs_unexpected_pos_on_a_nearly_full_disk_reads_as_no_space(tmp_path, monkeypatch):
    """torch.save on a full disk says only "unexpected pos"; the free space left decides."""
    target = tmp_path / "run" / "checkpoint.pt"
    report_free(monkeypatch, 72_720)

    def torch_save(tmp):
        tmp.write_bytes(b"x" * 72_720)
        raise RuntimeError(
            "[enforce fail at inline_container.cc:783] . PytorchStreamWriter failed writing file "
            "data/0: file write failed; unexpected pos 72832 vs 72720"
        )

    with pytest.raises(ResultWriteError) as caught:
        atomic_write(target, torch_save)
    assert str(caught.value) == (
        f"no space left on device writing {target} (more than 73 kB needed, 73 kB free)"
    )
    assert "unexpected pos" in str(caught.value.__cause__)
    assert leftovers(target.parent) == []


def test_a_writers_own_error_with_space_to_spare_is_left_as_it_is(tmp_path, monkeypatch):
    report_free(monkeypatch, 10**9)

    def buggy(tmp):
        tmp.write_text("half")
        raise RuntimeError("a bug in the writer")

    with pytest.raises(RuntimeError, match="^a bug in the writer$"):
        atomic_write(tmp_path / "x.pt", buggy)
    assert leftovers(tmp_path) == []


def test_a_known_size_is_checked_before_anything_is_written(tmp_path, monkeypatch):
    report_free(monkeypatch, 300_000)
    calls = []
    with pytest.raises(ResultWriteError) as caught:
        atomic_write(tmp_path / "cifar10.npz", calls.append, size=184_320_000)
    assert str(caught.value) == (
        f"no space left on device writing {tmp_path / 'cifar10.npz'} (184 MB needed, 0.3 MB free)"
    )
    assert calls == [] and leftovers(tmp_path) == []


def test_a_refused_temporary_file_names_the_result_and_its_folder(tmp_path):
    """As root ignores permissions, the refusal is simulated: the writer's open is refused."""
    target = tmp_path / "run" / "summary.json"

    def refused(tmp):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp))

    with pytest.raises(ResultWriteError) as caught:
        atomic_write(target, refused)
    assert str(caught.value) == (
        f"cannot write {target}: the folder {target.parent} is not writable (permission denied)"
    )
    assert leftovers(target.parent) == []


def test_a_refused_run_folder_names_the_folder_that_refuses(tmp_path, monkeypatch):
    read_only = tmp_path / "results"
    read_only.mkdir()
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777):  # as a read-only ``results`` would, even for root
        if os.path.dirname(path) == str(read_only):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        real_mkdir(path, mode)

    monkeypatch.setattr(os, "mkdir", mkdir)
    target = read_only / "train" / "seed0" / "model.pt"
    with pytest.raises(ResultWriteError) as caught:
        atomic_write(target, lambda tmp: tmp.write_text("never"))
    assert str(caught.value) == (
        f"cannot write {target}: the folder {read_only} is not writable (permission denied)"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_names_the_folder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ResultWriteError) as caught:
            write_text_atomic(folder / "summary.json", "{}")
        assert str(caught.value) == (
            f"cannot write {folder / 'summary.json'}: the folder {folder} is not writable (permission denied)"
        )
        with pytest.raises(ResultWriteError, match=f"^cannot write {folder / 'seed0'}: the folder"):
            make_folder(folder / "seed0")
    finally:
        folder.chmod(0o755)


def test_a_refused_source_file_is_not_blamed_on_the_folder(tmp_path):
    source = tmp_path / "report.pdf"

    def copy(tmp):
        raise PermissionError(errno.EACCES, "Permission denied", str(source))

    with pytest.raises(PermissionError) as caught:
        atomic_write(tmp_path / "out.pdf", copy)
    assert type(caught.value) is PermissionError and caught.value.filename == str(source)


def test_os_errors_are_described_in_one_line_naming_the_file(tmp_path, monkeypatch):
    report_free(monkeypatch, 2_500_000)
    log = tmp_path / "train.log"
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device", str(log))) == (
        f"no space left on device writing {log} (more than 2.5 MB needed, 2.5 MB free)"
    )
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device")) == (
        "no space left on device writing the log or output (No space left on device)"
    )
    missing = tmp_path / "results" / "run"
    assert describe_os_error(PermissionError(errno.EACCES, "Permission denied", str(missing))) == (
        f"cannot write {missing}: the folder {missing.parent} is not writable (permission denied)"
    )
    assert describe_os_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "x.npz")) == (
        "x.npz: No such file or directory"
    )
