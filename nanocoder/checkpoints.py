"""Each turn's file changes, recorded by the file tools before they happen, for /undo and /diff. Commands'
changes are named, not undone: a snapshot would cost a copy of the tree, or a touch of git's index."""
import threading
from pathlib import Path

from .atomic import atomic_write
from .text import decode, diff

MAX_KEPT = 100 << 20  # bytes of copies kept for /undo; past it the oldest turns' copies are dropped


class Dropped:
    """In place of a copy dropped to stay under MAX_KEPT: that file can no longer be put back."""


class Checkpoints:
    def __init__(self):
        # per turn: ({path: its bytes before the turn changed it, None (it was not there), or Dropped},
        #            tools that may have changed files unseen)
        self.turns: list[tuple[dict, set]] = []
        # each file as it was before the session changed it: the same object as in the turn that first
        # recorded it, so it costs nothing more
        self.original: dict[Path, bytes | None | Dropped] = {}
        self.kept = 0  # bytes of the copies in turns
        self._lock = threading.RLock()  # parallel calls record at once

    def begin(self) -> None:
        with self._lock:
            self.turns.append(({}, set()))

    def record(self, path: Path) -> None:
        """Called by a tool just before it writes path."""
        with self._lock:
            if not self.turns:
                self.begin()
            files = self.turns[-1][0]
            if path not in files:  # once per turn: its state before the turn
                files[path] = before = path.read_bytes() if path.is_file() else None
                self.original.setdefault(path, before)
                self.kept += len(before or b"")
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        for files, _ in self.turns:  # oldest first: the last turns are the ones /undo reaches first
            for path, before in files.items():
                if self.kept <= MAX_KEPT:
                    return
                if isinstance(before, bytes):
                    files[path] = Dropped()
                    if self.original.get(path) is before:
                        self.original[path] = files[path]
                    self.kept -= len(before)

    def ran(self, tool: str) -> None:
        """A tool that may change files without recording them ran in this turn."""
        with self._lock:
            if self.turns:
                self.turns[-1][1].add(tool)

    def undo(self) -> tuple[list[str], set]:
        """Put back the files of the last turn that changed any; (what was done, tools not undone)."""
        with self._lock:
            while self.turns and not self.turns[-1][0]:
                self.turns.pop()
            if not self.turns:
                return [], set()
            files, others = self.turns.pop()
            self.kept -= sum(len(before) for before in files.values() if isinstance(before, bytes))
        done = []
        for path, before in files.items():
            if isinstance(before, Dropped):
                done.append(f"could not restore {path}: its copy was dropped to keep /undo's copies under "
                             f"{MAX_KEPT >> 20} MB")
                continue
            if before is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, before)
            done.append(f"{'removed' if before is None else 'restored'} {path}")
            if self.original.get(path) is before:  # back as the session found it
                self.original.pop(path, None)
        return done, others

    def diff(self, show) -> str:
        """What the session changed, file by file, as a unified diff (show names a path)."""
        now = lambda path: path.read_bytes() if path.is_file() else None
        lost = f"changed; its first state is no longer kept (over {MAX_KEPT >> 20} MB of copies)"
        return "\n".join(f"{show(path)}: {lost}" if isinstance(before, Dropped) else
                         diff(show(path), decode(before or b"").text, decode(after or b"").text,
                              new=before is None)
                         for path, before in self.original.items() if (after := now(path)) != before)
