"""A project's memory, read once per session (again on /clear): ~/.nanocoder/AGENTS.md, then AGENTS.md, or
else CLAUDE.md, in each folder from the repository root down to the current one. It is untrusted input: sizes
capped, non-UTF-8 bytes replaced, links to keys refused."""
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .permissions import PROTECTED, read_kind
from .session import home

MEMORY_FILES = ("AGENTS.md", "CLAUDE.md")  # in each folder, the first found
MEMORY_CAP, MEMORY_TOTAL = 8_000, 24_000  # characters of one memory file, and of all of them
FILE_CAP = 64 << 10  # bytes read of one file


@dataclass
class Project:
    memory: dict = field(default_factory=dict)  # path -> the text that goes in the system prompt
    notes: list = field(default_factory=list)  # what was cut or left out, for /memory

    @classmethod
    def load(cls, cwd: Path) -> "Project":
        project, left, cwd = cls(), MEMORY_TOTAL, Path(cwd)
        root = next((p for p in (cwd, *cwd.parents) if (p / ".git").exists()), cwd)
        folders = [p for p in (cwd, *cwd.parents) if p.is_relative_to(root)][::-1]
        found = [next((d / n for n in MEMORY_FILES if (d / n).is_file()), None) for d in folders]
        for path in [home() / "AGENTS.md", *filter(None, found)]:
            text, cap = project.read(path), max(0, min(MEMORY_CAP, left))
            if text is None:
                continue
            if len(text) > cap:
                text = text[:cap] + f"\n[... {path.name} cut at {cap:,} characters]"
                project.notes.append(f"{path}: cut at {cap:,} characters")
            left -= len(text)
            project.memory[path] = text
        return project

    def read(self, path: Path) -> str | None:
        """A regular file's text, FILE_CAP bytes at most; None (and a note) if not, or if it leads to keys."""
        try:
            if read_kind(path.resolve())[0] == PROTECTED:
                raise PermissionError("it leads to keys or credentials")
            # O_NONBLOCK: a FIFO named AGENTS.md must not hang the start
            with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise OSError("not a regular file")
                return f.read(FILE_CAP).decode("utf-8", "replace")
        except (OSError, RuntimeError) as e:  # RuntimeError: a loop of links
            if not isinstance(e, FileNotFoundError):
                self.notes.append(f"{path}: not read ({getattr(e, 'strerror', None) or e})")
            return None

    def prompt(self) -> str:
        return "\n\n".join(f"# Project instructions ({path})\n{text}" for path, text in self.memory.items())
