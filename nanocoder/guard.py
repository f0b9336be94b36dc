"""What a workspace-write command may not change, though it can write there: .git's config, hooks, commondir
and info (git runs what they name), a .git pointer file, the start-up files. Landlock alone keeps none of them
read-only, so Guard notes them before each such command and puts back whatever changed."""
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from .permissions import SHELL_FILES


@dataclass(frozen=True)
class Entry:
    mode: int
    ctime: int  # changes with content, mode or names, and no command can set it back
    data: bytes | str | None = None  # a file's bytes, a link's target (only in the snapshot taken before)

    def same(self, other) -> bool:
        return (self.mode, self.ctime) == (other.mode, other.ctime)


class Guard:
    def __init__(self, root: Path, home: Path):
        git = root / ".git"
        paths = [git] if git.is_file() else [git / name for name in ("config", "hooks", "commondir", "info")]
        paths += [p for p in (home / name for name in (*SHELL_FILES, ".nanocoder/settings.json"))
                  if p.is_relative_to(root)]
        # a folder on the way replaced by a link must not lead the restore elsewhere: its real path is kept
        self.before = {path: (os.path.realpath(path.parent), snapshot(path)) for path in paths}

    def restore(self) -> list[str]:
        """Put back what changed since the snapshot; the names of what was put back (or could not be)."""
        restored = []
        for path, (parent, before) in self.before.items():
            after = snapshot(path, read=False)  # a huge file planted there is never read
            if after.keys() == before.keys() and all(after[n].same(before[n]) for n in after):
                continue
            if os.path.realpath(path.parent) != parent:
                restored.append(f"{path} (not put back: a folder on its way was replaced)")
                continue
            remove(path)
            for name, entry in sorted(before.items()):  # a folder before what it holds
                put(path / name if name else path, entry)
            restored.append(str(path))
        return restored


def snapshot(path: Path, read=True) -> dict[str, Entry]:
    """Each name under path (path itself is "") with its mode and content; {} if nothing is there."""
    if not os.path.lexists(path):
        return {}
    seen = {}
    for name, full in [("", path)] + [(str(p.relative_to(path)), p) for p in _under(path)]:
        st = full.lstat()
        data = (os.readlink(full) if stat.S_ISLNK(st.st_mode) else None if stat.S_ISDIR(st.st_mode) else
                full.read_bytes() if read and stat.S_ISREG(st.st_mode) else b"")
        seen[name] = Entry(st.st_mode, st.st_ctime_ns, data)
    return seen


def _under(path: Path):
    if path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):  # links to folders are listed, never followed
            yield from (Path(folder, name) for name in sorted(dirs + files))


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def put(path: Path, entry: Entry) -> None:
    if isinstance(entry.data, str):
        os.symlink(entry.data, path)
        return
    if entry.data is None:
        path.mkdir()
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(fd, "wb") as f:
            f.write(entry.data)
    os.chmod(path, stat.S_IMODE(entry.mode))
