"""Each turn's file changes, recorded by the file tools before they happen, for /undo and /diff. Commands'
changes are named, not undone: a snapshot of the whole tree would cost a copy of it, or a touch of the user's
git index."""
import threading
from pathlib import Path

from .atomic import atomic_write


class Checkpoints:
    def __init__(self):
        # per turn: ({path: its bytes before the turn changed it, or None},
        #            tools that may have changed files unseen)
        self.turns: list[tuple[dict, set]] = []
        self.original: dict[Path, bytes | None] = {}  # each file as it was before the session changed it
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
            if path not in files:
                files[path] = before = path.read_bytes() if path.is_file() else None
                self.original.setdefault(path, before)

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
        done = []
        for path, before in files.items():
            if before is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, before)
            done.append(f"{'removed' if before is None else 'restored'} {path}")
            if self.original.get(path) == before:  # back as the session found it
                self.original.pop(path, None)
        return done, others

    def diff(self, show) -> str:
        """What the session changed, file by file, as a unified diff (show names a path)."""
        from .tools.files import decode, diff
        now = lambda path: path.read_bytes() if path.is_file() else None
        return "\n".join(diff(show(path), decode(before or b"").text, decode(after or b"").text,
                              new=before is None)
                         for path, before in self.original.items() if (after := now(path)) != before)
