"""What a project brings from disk, read once per session (again on /clear): its memory
(~/.nanocoder/AGENTS.md, then AGENTS.md, or else CLAUDE.md, in each folder from the repository root down to
the current one), its commands (~/.nanocoder/commands/NAME.md, then .nanocoder/commands/NAME.md: /NAME) and
its skills (.../skills/NAME/SKILL.md, named in the system prompt; the model reads the file when it needs it).
All of it is untrusted input: names checked, sizes capped, non-UTF-8 bytes replaced, links to keys refused."""
import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .permissions import PROTECTED, read_kind
from .session import home

MEMORY_FILES = ("AGENTS.md", "CLAUDE.md")  # in each folder, the first found
MEMORY_CAP, MEMORY_TOTAL = 8_000, 24_000  # characters of one memory file, and of all of them
FILE_CAP, MAX_ITEMS = 64 << 10, 100  # bytes read of one file; commands, and skills, taken from one folder
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
ARG = re.compile(r"\$(ARGUMENTS|[1-9])")
FRONTMATTER = re.compile(r"---[ \t]*\r?\n(.*?)^---[ \t]*(\r?\n|\Z)", re.S | re.M)  # at the file's start
# the REPL's own commands: a command file of the same name is left out
BUILTINS = ("/model", "/mode", "/plan", "/sandbox", "/compact", "/tokens", "/diff", "/undo", "/init",
            "/memory", "/save", "/sessions", "/reset", "/clear", "/help", "quit")


@dataclass
class Extension:
    """A command (its body is the prompt /name stands for) or a skill (its file is named to the model)."""
    name: str
    description: str
    path: Path
    body: str


@dataclass
class Project:
    memory: dict = field(default_factory=dict)  # path -> the text that goes in the system prompt
    commands: dict = field(default_factory=dict)  # name -> Extension
    skills: dict = field(default_factory=dict)  # name -> Extension
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
        for kind, pattern in (("commands", "*.md"), ("skills", "*/SKILL.md")):
            for path in [p for folder in (home(), root / ".nanocoder") for p in sorted(
                    (folder / kind).glob(pattern))[:MAX_ITEMS]]:  # the project's own win
                meta, body = project.frontmatter(path)
                name = meta.get("name", path.parent.name) if kind == "skills" else path.stem
                usable = NAME.fullmatch(name) and f"/{name}" not in BUILTINS and (
                    kind == "commands" or meta.get("description"))
                if body is not None and usable:
                    getattr(project, kind)[name] = Extension(name, meta.get("description", ""), path, body)
                elif body is not None:
                    project.notes.append(f"{path}: left out; it needs a name of letters, digits, - and _ "
                                         "that no built-in command has (and a skill, a description)")
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

    def frontmatter(self, path: Path) -> tuple[dict, str | None]:
        """The `key: value` lines between a first line `---` and the next `---` (the simple YAML these files
        use), and the text after them; that text is None if the file cannot be read."""
        text = self.read(path)
        if text is None or not (found := FRONTMATTER.match(text)):
            return {}, text
        keys = [line.partition(":") for line in found[1].splitlines()]
        meta = {key.strip().lower(): " ".join(value.split()).strip("'\"")[:300] for key, _, value in keys}
        return meta, text[found.end():]

    def expand(self, line: str) -> str | None:
        """The prompt a `/name arguments` line stands for, if name is a command: its $ARGUMENTS and $1..$9
        filled in (arguments with no place there are appended); None if it is not one."""
        name, _, arguments = line.strip().removeprefix("/").partition(" ")
        command, arguments = self.commands.get(name) if line.startswith("/") else None, arguments.strip()
        if command is None:
            return None
        if arguments and not ARG.search(command.body):
            return f"{command.body.rstrip()}\n\nARGUMENTS: {arguments}"
        try:
            words = shlex.split(arguments)
        except ValueError:  # an unclosed quote
            words = arguments.split()
        return ARG.sub(lambda m: arguments if m[1] == "ARGUMENTS" else
                       (words[int(m[1]) - 1] if int(m[1]) <= len(words) else ""), command.body)

    def prompt(self) -> str:
        """The system prompt's share: the memory files, then the skills by name and description."""
        parts = [f"# Project instructions ({path})\n{text}" for path, text in self.memory.items()]
        if self.skills:
            parts.append("# Skills\nEach skill is a file of instructions for one kind of task: when a task "
                         "matches a skill's description, read its file with read_file first.\n" + "\n".join(
                             f"- {s.name}: {s.description} ({s.path})" for s in self.skills.values()))
        return "\n\n".join(parts)
