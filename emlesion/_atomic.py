"""Atomic file writes and folder publication shared by every module that writes outputs.

A file is written to a temporary file in its destination folder and renamed into place
with :func:`os.replace`, so that a reader (or a resumed batch) never sees a half-written
file that looks complete. The temporary file gets the usual mode (``0o666 & ~umask``)
instead of :func:`tempfile.mkstemp`'s 0600.

A folder is built completely under a temporary name beside its destination and published
by :func:`publish_dir`, one ``rename(2)`` on the same file system.

References
----------
.. [1] POSIX ``rename(2)``: renaming a file or a directory within one file system is atomic;
   a directory may replace an existing *empty* directory, never a non-empty one.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from emlesion.errors import format_message

__all__ = [
    "atomic_path",
    "atomic_paths",
    "publish_dir",
    "staged_dir",
    "write_bytes_atomic",
    "write_text_atomic",
]


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux).

    Setting and restoring the umask (the portable fallback) briefly leaves it at 0, which
    another thread creating a file at that moment would inherit.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_beside(target: Path) -> Path:
    """A new empty temporary file in the folder of ``target`` (created with its parents)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(name)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    On an exception the temporary file is removed and ``path`` is left untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "a.txt").read_text()
    'done'
    """
    target = Path(path)
    tmp = _temp_beside(target)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_paths(paths: Sequence[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """Yield temporary paths beside ``paths``; publish them together when the block succeeds.

    Every file is renamed onto its destination, or none is: a destination that existed is
    moved aside first and put back if a later rename fails, and a destination that did not
    exist is removed again. A destination that is a directory is refused before anything is
    renamed. On an exception in the block the temporary files are removed and the
    destinations are left untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_paths([d / "a.txt", d / "b.txt"]) as (ta, tb):
    ...     _ = ta.write_text("A"), tb.write_text("B")
    >>> sorted(p.name for p in d.iterdir())
    ['a.txt', 'b.txt']
    """
    targets = [Path(p) for p in paths]
    temps: list[Path] = []
    try:
        temps.extend(_temp_beside(target) for target in targets)
        yield temps
        for target in targets:
            if target.is_dir():
                raise IsADirectoryError(errno.EISDIR, "is a directory", str(target))
        mode = 0o666 & ~_umask()
        done: list[tuple[Path, Path | None]] = []  # (destination, where its old file went)
        try:
            for tmp, target in zip(temps, targets):
                os.chmod(tmp, mode)
                backup = None
                if target.exists() or target.is_symlink():
                    backup = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.bak")
                    os.replace(target, backup)
                done.append((target, backup))
                os.replace(tmp, target)
        except BaseException:
            for target, backup in reversed(done):
                if backup is not None:
                    os.replace(backup, target)
                else:
                    target.unlink(missing_ok=True)
            raise
        for _, backup in done:
            if backup is not None:
                backup.unlink(missing_ok=True)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (newlines written as given)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return Path(path)


def publish_dir(
    tmp_dir: str | os.PathLike[str], final_dir: str | os.PathLike[str], *, replace: bool
) -> None:
    """Publish a completely written folder ``tmp_dir`` under the name ``final_dir`` by rename.

    A reader sees either the previous ``final_dir`` (or none) or the complete new one, never
    a half-written folder: the only step that makes content visible at ``final_dir`` is one
    :func:`os.rename` / :func:`os.replace` within one file system [1]_.

    Parameters
    ----------
    tmp_dir : path
        The finished folder, normally a hidden sibling of ``final_dir`` (e.g. from
        :func:`tempfile.mkdtemp` with ``dir=final_dir.parent``). It must be on the same file
        system as ``final_dir``'s parent, which must exist.
    final_dir : path
        The published name.
    replace : bool
        What to do when ``final_dir`` already exists:

        * ``False``: publish only over nothing or an *empty* directory (nothing is lost);
          any other existing ``final_dir`` raises :class:`FileExistsError` and is left
          untouched. The check is repeated by the rename itself, so content that appears in
          ``final_dir`` in the meantime is never overwritten.
        * ``True``: the existing ``final_dir`` (folder, file or link) is first renamed to
          a hidden sibling ``.<name>.old-<12 hex>``, then ``tmp_dir`` is renamed to
          ``final_dir``; if that rename fails the old copy is renamed back, otherwise it is
          deleted (best effort: an old copy that cannot be deleted stays under its hidden
          name, which :mod:`emlesion.batch` removes at its next run).

    Raises
    ------
    FileNotFoundError
        ``tmp_dir`` is not a directory, or ``final_dir``'s parent does not exist.
    FileExistsError
        ``replace`` is False and ``final_dir`` exists and is not an empty directory.
    OSError
        ``tmp_dir`` and ``final_dir`` are on different file systems (``errno.EXDEV``), or
        the rename failed.

    Notes
    -----
    On any failure ``tmp_dir`` is left in place, complete, under its own name; removing it
    is the caller's job. Nothing is flushed to disk (no ``fsync``): the guarantee is about
    what concurrent readers and a resumed run see, not about power loss.

    References
    ----------
    .. [1] POSIX ``rename(2)``; Python :func:`os.replace`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> tmp = pathlib.Path(tempfile.mkdtemp(prefix=".out.", dir=root))
    >>> _ = (tmp / "a.txt").write_text("done")
    >>> publish_dir(tmp, root / "out", replace=False)
    >>> (root / "out" / "a.txt").read_text(), tmp.exists()
    ('done', False)
    """
    tmp = Path(tmp_dir)
    final = Path(final_dir)
    if not tmp.is_dir():
        raise FileNotFoundError(
            format_message(f"{tmp} is not a directory", fix="publish a finished folder"))
    if os.stat(tmp).st_dev != os.stat(final.parent).st_dev:
        raise OSError(errno.EXDEV, format_message(
            f"{tmp} and {final} are on different file systems: the folder cannot be published "
            "by an atomic rename", fix=f"create the temporary folder inside {final.parent}"))
    if not replace:
        _rename_no_replace(tmp, final)
        return
    if not os.path.lexists(final):
        os.replace(tmp, final)
        return
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:12]}")
    os.replace(final, old)
    try:
        os.replace(tmp, final)
    except BaseException:
        os.replace(old, final)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


@contextmanager
def staged_dir(final_dir: str | os.PathLike[str], *, replace: bool) -> Iterator[Path]:
    """Yield an empty hidden sibling folder of ``final_dir``; publish it when the block succeeds.

    Everything written into the yielded folder becomes visible at ``final_dir`` at once, by
    :func:`publish_dir` (one rename), when the ``with`` block ends without an exception. On
    an exception (or a failed publication) the staging folder is deleted and ``final_dir``
    is left as it was: the old result or nothing, never a mix.

    Parameters
    ----------
    final_dir : path
        The folder to publish. Its parent is created when missing.
    replace : bool
        As in :func:`publish_dir`: ``True`` replaces an existing ``final_dir`` as a whole (no
        stale file of the old folder survives); ``False`` publishes only over nothing or an
        empty folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with staged_dir(root / "out", replace=False) as tmp:
    ...     _ = (tmp / "a.txt").write_text("done")
    >>> sorted(p.name for p in root.iterdir()), (root / "out" / "a.txt").read_text()
    (['out'], 'done')
    """
    final = Path(final_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        publish_dir(tmp, final, replace=replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _rename_no_replace(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final`` unless ``final`` exists with content (see publish_dir)."""
    def exists_error() -> FileExistsError:
        return FileExistsError(errno.EEXIST, format_message(
            f"{final} exists and is not an empty folder: not replaced",
            fix="choose a new folder or ask for replacement"), str(final))

    if os.path.lexists(final):
        if not final.is_dir() or final.is_symlink():
            raise exists_error()
        try:
            os.rmdir(final)  # fails (and keeps it) when it is not empty
        except OSError:
            raise exists_error() from None
    try:
        os.rename(tmp, final)  # POSIX: fails on a non-empty directory or a file
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR) and os.path.lexists(final):
            raise exists_error() from exc
        raise
