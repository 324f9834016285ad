"""Atomic writes (emlesion._atomic): complete files only, usual permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from emlesion._atomic import atomic_path, write_bytes_atomic, write_text_atomic


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
