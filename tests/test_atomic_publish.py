"""Tests of emlesion._atomic.publish_dir (folder publication by one rename).

Every expected value is the file content the test itself wrote, so each assertion says which
copy of the folder (new, old, or none) a reader finds at the destination.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from emlesion import _atomic
from emlesion._atomic import publish_dir


def _tree(root: Path) -> dict[str, str]:
    """``{relative path: text}`` of every file under ``root``."""
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(root.rglob("*")) if p.is_file()}


def _new_tmp(parent: Path, name: str = ".out.tmp-1") -> Path:
    """A finished temporary folder with a nested file, beside the destination."""
    tmp = parent / name
    (tmp / "sub").mkdir(parents=True)
    (tmp / "report.json").write_text("new", encoding="utf-8")
    (tmp / "sub" / "a.txt").write_text("new-a", encoding="utf-8")
    return tmp


NEW = {"report.json": "new", "sub/a.txt": "new-a"}


def _old_final(parent: Path) -> Path:
    final = parent / "out"
    final.mkdir()
    (final / "report.json").write_text("old", encoding="utf-8")
    (final / "stale.txt").write_text("old-only", encoding="utf-8")
    return final


OLD = {"report.json": "old", "stale.txt": "old-only"}


@pytest.mark.parametrize("replace", [False, True])
def test_destination_absent_is_published(tmp_path: Path, replace: bool) -> None:
    tmp = _new_tmp(tmp_path)
    publish_dir(tmp, tmp_path / "out", replace=replace)
    assert _tree(tmp_path / "out") == NEW
    assert not tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing left behind


def test_destination_present_replace_true_swaps_and_removes_old(tmp_path: Path) -> None:
    final = _old_final(tmp_path)
    tmp = _new_tmp(tmp_path)
    publish_dir(tmp, final, replace=True)
    assert _tree(final) == NEW  # "stale.txt" of the old copy is gone, not merged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # old copy deleted


def test_destination_file_replace_true(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.write_text("a file", encoding="utf-8")
    tmp = _new_tmp(tmp_path)
    publish_dir(tmp, final, replace=True)
    assert _tree(final) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_destination_present_replace_false_raises_and_keeps_both(tmp_path: Path) -> None:
    final = _old_final(tmp_path)
    tmp = _new_tmp(tmp_path)
    with pytest.raises(FileExistsError, match="exists and is not an empty folder"):
        publish_dir(tmp, final, replace=False)
    assert _tree(final) == OLD
    assert _tree(tmp) == NEW  # the source is intact for the caller to keep or remove


def test_destination_file_replace_false_raises(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.write_text("a file", encoding="utf-8")
    tmp = _new_tmp(tmp_path)
    with pytest.raises(FileExistsError):
        publish_dir(tmp, final, replace=False)
    assert final.read_text(encoding="utf-8") == "a file"
    assert _tree(tmp) == NEW


def test_empty_destination_folder_is_replaced_without_replace(tmp_path: Path) -> None:
    # an empty folder holds nothing to lose (generate_sample_study accepts an empty outdir)
    final = tmp_path / "out"
    final.mkdir()
    tmp = _new_tmp(tmp_path)
    publish_dir(tmp, final, replace=False)
    assert _tree(final) == NEW
    assert not tmp.exists()


def test_failed_rename_restores_old_and_keeps_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = _old_final(tmp_path)
    tmp = _new_tmp(tmp_path)
    real_replace = os.replace

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src) == tmp:  # only the publication of the new folder fails
            raise OSError(errno.EIO, "simulated I/O error")
        real_replace(src, dst)

    monkeypatch.setattr(_atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated I/O error"):
        publish_dir(tmp, final, replace=True)
    monkeypatch.undo()
    assert _tree(final) == OLD  # the old copy was renamed back
    assert _tree(tmp) == NEW
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.tmp-1", "out"]  # no .old-*


def test_source_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        publish_dir(tmp_path / "missing", tmp_path / "out", replace=True)
    assert not (tmp_path / "out").exists()


def test_different_file_systems_refused_before_any_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = _old_final(tmp_path)
    tmp = _new_tmp(tmp_path)
    real_stat = os.stat

    def stat(path: str | os.PathLike[str], **kwargs: bool) -> os.stat_result:
        st = real_stat(path, **kwargs)
        if Path(path) == tmp:  # pretend the source lives on another device
            fields = list(st)
            fields[2] += 1  # index 2 of the stat tuple is st_dev
            return os.stat_result(fields)
        return st

    monkeypatch.setattr(_atomic.os, "stat", stat)
    with pytest.raises(OSError, match="different file systems") as info:
        publish_dir(tmp, final, replace=True)
    monkeypatch.undo()
    assert info.value.errno == errno.EXDEV
    assert _tree(final) == OLD
    assert _tree(tmp) == NEW
