"""Files written whole or not at all: a temporary file beside the target, then a rename.

Every output of the engine (plans, forecasts, charts, fitted models, LP files) goes through
:func:`atomic_target`, so a reader sees the old file or the new one, never half of one; a
failed or interrupted write leaves the old file as it was. The new file gets the mode the old
one had (or what the umask gives a new file), not the 0600 of a temporary file, and temporary
files left by a run that was killed outright (SIGKILL) are removed by the next write.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["atomic_target", "is_special", "sync", "write_text_atomic"]


def _new_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _remove_stale(target: Path) -> None:
    """Temporary files of ``target`` whose writer no longer runs."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.tmp(\.\w+)?$")
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return
    for path in siblings:
        m = pattern.match(path.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                path.unlink()
                logger.info("removed %s, left by a run that was killed", path)


def is_special(path) -> bool:
    """``path`` exists and is not a regular file or a folder (through symlinks): a device such as
    /dev/null, a pipe, /dev/stdout. Such a target is written in place: renaming a file over it
    would replace the device node or the link for every other program."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def sync(fh) -> None:
    """Flush ``fh`` to disk; a pipe or a device that cannot be synced is fine as it is."""
    fh.flush()
    try:
        os.fsync(fh.fileno())
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EROFS):
            raise


@contextlib.contextmanager
def atomic_target(path):
    """Yield a temporary path to write; on success it replaces ``path``, else it is removed.

    The temporary file keeps ``path``'s suffix (chart libraries choose the format by it). A
    symlink is written through: the file it points to is replaced and the link stays. A device
    or a pipe (``-o /dev/null``) is yielded itself and written in place (:func:`is_special`).
    """
    if is_special(path):
        yield Path(os.fspath(path))
        return
    target = Path(os.path.realpath(os.fspath(path)))
    _remove_stale(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp{target.suffix}")
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = _new_file_mode()
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_target`, synced to disk."""
    with atomic_target(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            sync(fh)
