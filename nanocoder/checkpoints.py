"""Checkpoints: the workspace's files as git trees in a shadow store in ~/.nanocoder (never in the workspace;
sandboxed commands can neither read nor write it), taken before and after each turn, so that /undo, /diff and
/rewind cover what commands changed as well as the file tools. The trees are saved with the session."""
import hashlib
import os
import stat
import subprocess
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .prompt import git_env
from .session import home, private_dir
from .tools.base import printable

MAX_FILE = 10 << 20  # a larger file is left out of the snapshots: /undo leaves it as it is
MAX_FILES, MAX_BYTES = 50_000, 1 << 30  # new or changed at once, past these: the workspace is too big
TIMEOUT = 30  # seconds for one git step; past it the checkpoints stop rather than hold up the session


@dataclass
class Step:
    """A user turn: the mark on its message (the message's "checkpoint"), the trees before and after it."""
    mark: str
    before: str
    after: str


@dataclass
class Back:
    """Going back to before steps[index]: each file's fate ("restored", "removed"); the edits it undoes."""
    index: int
    files: dict
    edited: str


class Checkpoints:
    def __init__(self, workspace, saved=()):
        """saved: a session's steps, as dicts; kept if of the right shape (the ids go to git's argv)."""
        self.root, self.git, self.told = workspace.root, workspace.git, False
        shape = lambda d: isinstance(d, dict) and set(d) == {"mark", "before", "after"}
        self.steps = [Step(**d) for d in saved if shape(d) and all(str(v).isalnum() for v in d.values())]
        self.store = home() / "checkpoints" / hashlib.sha256(os.fsencode(self.root)).hexdigest()[:20]
        self.env = git_env(workspace) | {"GIT_DIR": str(self.store), "GIT_WORK_TREE": str(self.root),
                                         "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
        self.off = "" if self.git else "no git found: /undo, /diff and /rewind cover nothing"
        if home().resolve().is_relative_to(self.root):  # your home folder, or /: far too much to copy
            self.off = f"{self.root} holds ~/.nanocoder: /undo, /diff and /rewind cover nothing here"

    def begin(self, message: dict) -> str:
        """A snapshot before the turn of this user message (marked with it); why there is none, said once."""
        if tree := self.snapshot():
            self.steps.append(Step(os.urandom(6).hex(), tree, tree))
            message["checkpoint"] = self.steps[-1].mark
        told, self.told = self.told, bool(self.off)
        return "" if told else self.off

    def end(self) -> None:
        if self.steps and (tree := self.snapshot()):
            self.steps[-1].after = tree

    def snapshot(self) -> str | None:
        """The workspace as a tree in the store (ignored and large files left out), or None."""
        with self._guard():
            if not (self.store / "HEAD").exists():
                private_dir(self.store.parent)
                self._git("init", "-q", "--shared=0600", "--template=")  # private, and no sample hooks
            names = self._git("ls-files", "-z", "-o", "-m", "--exclude-standard").split("\0")[:-1]
            sizes = {name: st.st_size if (st := _lstat(self.root / name)) else 0 for name in names}
            if len(names) > MAX_FILES or sum(size for size in sizes.values() if size <= MAX_FILE) > MAX_BYTES:
                raise OSError(f"{self.root} is too big to snapshot ({len(names):,} files new or changed)")
            self._git("update-index", "--add", "--remove", "-z", "--stdin",
                      stdin="\0".join(n for n in names if sizes[n] <= MAX_FILE))
            self._git("update-index", "--force-remove", "-z", "--stdin",
                      stdin="\0".join(n for n in names if sizes[n] > MAX_FILE))
            return self._git("write-tree").strip()
        return None

    def diff(self) -> str:
        """What changed since the session's first snapshot, as `git diff` shows it (printable)."""
        with self._guard():
            if self.steps and (now := self.snapshot()):
                return printable(self._git("diff", self.steps[0].before, now))
        return ""

    def back(self, mark: str = "") -> Back | None:
        """Going back to before the turn of this mark (none: the last turn that changed files), or None if
        nothing would. Git's index is left as the workspace now, which restore() starts from."""
        chosen = [i for i, step in enumerate(self.steps)
                  if step.mark == mark or not mark and step.before != step.after]
        with self._guard():
            if chosen and (now := self.snapshot()):
                index = chosen[-1]
                ends = [step.after for step in self.steps[index:]]  # the agent's; the gaps between are not
                starts = [step.before for step in self.steps[index + 1:]] + [now]
                edited = "\n".join(self._git("diff", a, b) for a, b in zip(ends, starts) if a != b)
                names = self._git("diff", "--name-status", "--no-renames", now, self.steps[index].before)
                files = {name: "removed" if how == "D" else "restored"
                         for how, name in (line.split("\t", 1) for line in names.splitlines())}
                return Back(index, files, printable(edited.strip()))
        return None

    def restore(self, back: Back) -> None:
        """Put the files back as back says, and forget the steps from there on (self.off says if it failed).
        Git keeps only the executable bit: a file that stays keeps its mode unless that bit goes back."""
        regular = lambda st: st and stat.S_ISREG(st.st_mode)  # a link is never followed
        modes = {name: st.st_mode for name in back.files if regular(st := _lstat(self.root / name))}
        with self._guard():
            self._git("read-tree", "--reset", "-u", self.steps[back.index].before)
            for name, mode in modes.items():
                now = _lstat(self.root / name)
                if regular(now) and not (mode ^ now.st_mode) & 0o100:
                    os.chmod(self.root / name, mode)
            del self.steps[back.index:]

    def _git(self, *args, stdin="") -> str:
        if self.off:
            raise OSError(self.off)
        out = subprocess.run([self.git, "-c", "core.quotePath=false", *args], cwd=self.root, env=self.env,
                             input=stdin, capture_output=True, text=True, errors="surrogateescape",
                             timeout=TIMEOUT)
        if out.returncode:
            raise OSError(f"git {args[0]} failed: {' '.join(out.stderr.split())[:200]}")
        return out.stdout

    @contextmanager
    def _guard(self):
        """A git step that fails or hangs stops the checkpoints for the session (said once), not the turn."""
        try:
            yield
        except (OSError, subprocess.SubprocessError) as e:
            self.off = self.off or f"/undo, /diff and /rewind cover nothing from here on: {e}"


def _lstat(path: Path) -> os.stat_result | None:
    with suppress(OSError):
        return path.lstat()
    return None  # gone
