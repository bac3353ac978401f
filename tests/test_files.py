"""trainact.files.atomic_write: the one way every command writes a result file."""

from __future__ import annotations

import os
import stat

import pytest

from trainact.files import atomic_write, file_digest, file_md5, write_csv_atomic, write_text_atomic


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
