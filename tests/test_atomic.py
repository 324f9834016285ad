"""Atomic writes (emlesion._atomic): complete files only, usual permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import emlesion._atomic as atomic
from emlesion._atomic import atomic_path, atomic_paths, write_bytes_atomic, write_text_atomic


def test_text_written_with_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        out = write_text_atomic(tmp_path / "sub" / "r.json", "{}\n")
    finally:
        os.umask(old)
    assert out.read_text() == "{}\n"
    # 0o666 & ~0o022 = 0o644 (not mkstemp's 0o600)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]  # no temporary left


def test_failure_leaves_previous_file_and_no_temporary(tmp_path: Path) -> None:
    target = write_bytes_atomic(tmp_path / "a.bin", b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half-writ")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_several_files_are_published_together_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = tmp_path / "a.json", tmp_path / "b.csv", tmp_path / "c.nii"
    a.write_text("old a")  # b and c do not exist yet
    # 1. the third rename fails: a gets its old content back, b is removed again
    real_replace = os.replace

    def failing(src: object, dst: object) -> None:
        if Path(str(dst)) == c:
            raise PermissionError(13, "Permission denied", str(c))
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic.os, "replace", failing)
    with pytest.raises(PermissionError), atomic_paths([a, b, c]) as temps:
        for tmp, text in zip(temps, ("new a", "new b", "new c")):
            tmp.write_text(text)
    assert a.read_text() == "old a" and not b.exists() and not c.exists()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.json"]  # no temporary, no backup
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    # 2. a destination that is a folder is refused before any rename
    c.mkdir()
    with pytest.raises(IsADirectoryError), atomic_paths([a, b, c]) as temps:
        for tmp in temps:
            tmp.write_text("x")
    assert a.read_text() == "old a" and not b.exists() and c.is_dir()
    c.rmdir()
    # 3. success: all three, the old a replaced, no backup left
    with atomic_paths([a, b, c]) as temps:
        for tmp, text in zip(temps, ("new a", "new b", "new c")):
            tmp.write_text(text)
    assert [x.read_text() for x in (a, b, c)] == ["new a", "new b", "new c"]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.json", "b.csv", "c.nii"]
