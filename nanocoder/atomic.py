"""Files written whole or not at all, and nothing left behind when the process is killed."""
import os
import re
import time
from contextlib import suppress
from pathlib import Path

TMP = ".nanocoder-"  # the prefix of our temp names, so a sweep finds only its own


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Via a temp file renamed over path: never half-written; it keeps its mode (or gets `mode`). The temp
    file is nameless until written where O_TMPFILE exists: only a kill between link and rename leaves it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        with suppress(FileNotFoundError):
            mode = path.stat().st_mode & 0o7777
    tmp = path.parent / f"{TMP}{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
    perm = 0o666 if mode is None else mode & 0o777  # the kernel applies umask: never briefly readable
    try:
        fd = os.open(path.parent, os.O_WRONLY | getattr(os, "O_TMPFILE", 0) | os.O_CLOEXEC, perm)
        named = False
    except OSError:  # no O_TMPFILE here (macOS, some file systems): a named temp file
        fd, named = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, perm), True
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            if not named:  # any dir_fd makes Python call linkat(), which can follow the /proc link (the
                # kernel ignores the fd, as the path is absolute)
                os.link(f"/proc/self/fd/{f.fileno()}", tmp, src_dir_fd=f.fileno())
                named = True
        os.replace(tmp, path)
    except BaseException:
        if named:
            tmp.unlink(missing_ok=True)
        raise
    sweep(path.parent)  # what a kill between link and rename left here before


# Our temp names: the file's name, then the writing process's id and 8 random hex digits (before the
# id was added: the digits alone)
TEMP_NAME = re.compile(re.escape(TMP) + r".+\.(?:(\d+)-)?[0-9a-f]{8}\.tmp", re.S)


def sweep(folder: Path, age: float = 60) -> None:
    """Remove the temp files a killed process of ours left in folder: those whose writer is gone, or older
    than age (a younger one may be in use; its process id may have been reused). Only regular files named
    exactly as atomic_write names them: never a user's file."""
    with suppress(OSError):
        for entry in os.scandir(folder):
            if not entry.name.startswith(TMP) or not (name := TEMP_NAME.fullmatch(entry.name)):
                continue
            with suppress(OSError):
                if entry.is_file(follow_symlinks=False) and (
                        (name[1] and not _running(int(name[1])))
                        or time.time() - entry.stat(follow_symlinks=False).st_mtime > age):
                    os.unlink(entry.path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone; an id no process can have
        return False
    except PermissionError:  # another user's
        return True
    return True
