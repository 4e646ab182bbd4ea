"""Replace a whole folder so readers see the old one or the new one: never half of each,
and never neither, even when the writer is killed at any instant.

The new folder is written beside the old one as `.<name>-build-<random>`, flushed to
disk, then exchanged with the old one in a single step (Linux `renameat2` with
`RENAME_EXCHANGE`, macOS `renamex_np` with `RENAME_SWAP`); a plain rename cannot
replace a non-empty folder, and two renames leave a moment with no folder at all. The
folder keeps its name and layout, so readers need nothing new.

Writers of one parent folder take turns under `flock` on that parent, held from before
the temporary folder exists until the old folder is deleted. So whoever holds the lock
knows that any `.<name>-build-*` folder is left over from a killed writer, and removes it.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h
_RENAME_SWAP = 2  # macOS sys/stdio.h
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP}
_LEGACY_TEMP = "[a-z0-9_]{8}"  # what earlier versions' mkdtemp(prefix=".<name>-") added


def build_prefix(destination: Path) -> str:
    """The name prefix of the temporary folders that writers of `destination` use."""
    return f".{Path(destination).name}-build-"


def replace_folder(destination: Path, fill: Callable[[Path], None]) -> Path:
    """Let `fill` write into a temporary sibling folder, then swap it in atomically.

    An exception in `fill` leaves `destination` as it was and no temporary folder
    behind; a kill leaves `destination` as it was, or already replaced, plus a
    temporary folder that the next call removes.
    """
    destination = Path(destination)
    parent = destination.parent
    parent.mkdir(parents=True, exist_ok=True)
    with writer_lock(parent):
        _restore_interrupted(destination)
        remove_abandoned(destination)
        tmp = Path(tempfile.mkdtemp(prefix=build_prefix(destination), dir=parent))
        try:
            fill(tmp)
            _fsync_tree(tmp)
            previous = _swap_in(tmp, destination)
            _fsync_dir(parent)
        except BaseException:
            _remove(tmp)
            raise
        if previous is not None:
            _remove(previous)
    return destination


@contextmanager
def writer_lock(parent: Path) -> Iterator[None]:
    """Hold the exclusive lock of the writers of folders in `parent`, waiting for it.

    The lock is on the folder itself, not a lock file, so it adds nothing beside the
    folders it guards, and the kernel drops it when its holder dies.
    """
    fd = os.open(parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def staging_folder(parent: Path, prefix: str = ".build-") -> Iterator[Path]:
    """A temporary folder in `parent` for a writer's scratch files, removed when done.

    Its writer holds `flock` on it while it lives, so a folder of that prefix whose lock
    can be taken was left by a killed writer: each new one removes those first. Writers
    sharing `parent` (builds of several indexes over one runtime folder) leave each
    other's live folders alone.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    with writer_lock(parent):
        for path in parent.glob(f"{prefix}*"):
            if path.is_dir() and not path.is_symlink() and not _locked(path):
                log.info("removed %s, left by an interrupted build", path)
                _remove(path)
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        fd = os.open(tmp, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield tmp
    finally:
        _remove(tmp)
        os.close(fd)


def _locked(folder: Path) -> bool:
    """Whether a live process holds `flock` on `folder`."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def remove_abandoned(destination: Path) -> list[Path]:
    """Delete what killed writers of `destination` left beside it; call under `writer_lock`.

    Also removes the leftovers of earlier versions (`.<name>-XXXXXXXX`, `<name>.old`),
    which wrote without the lock.
    """
    destination = Path(destination)
    prefix = build_prefix(destination)
    legacy = re.compile(rf"\.{re.escape(destination.name)}-{_LEGACY_TEMP}")
    removed = []
    for path in destination.parent.iterdir():
        name = path.name
        if name.startswith(prefix) or legacy.fullmatch(name) or name == destination.name + ".old":
            _remove(path)
            removed.append(path)
    if removed:
        log.info("removed %d folder(s) left by interrupted builds: %s", len(removed), ", ".join(p.name for p in removed))
    return removed


def leftovers(destination: Path) -> list[Path]:
    """The temporary folders beside `destination` (for checks and reports)."""
    prefix = build_prefix(destination)
    return sorted(p for p in Path(destination).parent.iterdir() if p.name.startswith(prefix))


def _restore_interrupted(destination: Path) -> None:
    """Put back the live folder that a two-rename swap (an earlier version, or a
    filesystem without exchange) had moved aside when it was killed."""
    if os.path.lexists(destination):
        return
    candidates = [destination.with_name(destination.name + ".old")]
    candidates += sorted(destination.parent.glob(build_prefix(destination) + "*-previous"))
    for aside in candidates:
        if aside.is_dir():
            aside.rename(destination)
            _fsync_dir(destination.parent)
            log.warning("restored %s from %s, left by an interrupted build", destination, aside.name)
            return


def _swap_in(tmp: Path, destination: Path) -> Path | None:
    """Make `tmp` the folder at `destination`; return where the previous one now is."""
    if not os.path.lexists(destination):
        os.rename(tmp, destination)
        return None
    if _exchange(tmp, destination):
        return tmp
    log.warning(
        "%s cannot exchange folders atomically; swapping with two renames (a kill between them "
        "leaves no folder until the next build restores it)",
        destination.parent,
    )
    aside = tmp.with_name(tmp.name + "-previous")
    os.rename(destination, aside)
    os.rename(tmp, destination)
    return aside


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step; False when the system or filesystem cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    src, dst = os.fsencode(a), os.fsencode(b)
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        rc = libc.renameat2(_AT_FDCWD, src, _AT_FDCWD, dst, _RENAME_EXCHANGE)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        rc = libc.renamex_np(src, dst, _RENAME_SWAP)
    else:
        return False
    if rc == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _fsync_tree(folder: Path) -> None:
    """Flush every file and folder under `folder`, so what is swapped in is on disk."""
    for root, _, files in os.walk(folder, topdown=False):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(root))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
