"""glob and grep: a Python walk that skips hidden files, generated folders, the root .gitignore's and keys.
Both take the first LIMIT results in path order (glob answers newest first)."""
import os
import re
from contextlib import suppress
from fnmatch import fnmatchcase, translate
from itertools import islice
from pathlib import Path

from ..permissions import secrets
from .base import Permission, ToolError, WorkspaceTool, printable
from .files import CHUNK, SNIFF, decode, open_file

MAX_RESULTS = 200        # lines in an answer
LIMIT = 1_000            # results looked at, in path order: the walk stops there
MAX_LINE = 300           # characters of a matching line shown
SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"})


class SearchTool(WorkspaceTool):
    read_only = True

    def permission(self, args: dict) -> Permission:
        return self.reading(args.get("path"))


class GlobTool(SearchTool):
    name = "glob"
    description = ("Find files by name pattern, e.g. `**/*.py` or `src/**/test_*.ts`; a pattern "
                   "without `/` matches names at any depth. Newest first.")
    parameters = {"type": "object", "properties": {
        "pattern": {"type": "string", "description": "Glob pattern; ** spans folders, {a,b} alternatives."},
        "path": {"type": "string", "description": "Folder to search (default: the working directory)."}},
        "required": ["pattern"]}

    def execute(self, pattern: str, path: str | None = None) -> str:
        root = self.workspace.path(path or ".")
        if not root.is_dir():
            raise ToolError(f"{'not a folder' if root.exists() else 'path not found'}: {printable(path)}")
        found = list(islice(filter(glob_regex(pattern).match, walk(root)), LIMIT))
        if not found:
            return f"No files match {printable(pattern)} in {self.workspace.show(root)}." + skipped(root)
        found.sort(key=lambda f: mtime(os.path.join(root, f)), reverse=True)  # stable: ties keep path order
        return capped(found, lambda f: self.workspace.show(root / f)) + skipped(root)


class GrepTool(SearchTool):
    name = "grep"
    description = ("Search file contents with a regular expression. Answers `path:line:text`. "
                   "Narrow it with path (a file or folder) and include (a file name glob like *.py).")
    parameters = {"type": "object", "properties": {
        "pattern": {"type": "string", "description": "Regular expression to search for."},
        "path": {"type": "string", "description": "File or folder (default: the working directory)."},
        "include": {"type": "string", "description": "Only files whose names match this glob, e.g. *.py."}},
        "required": ["pattern"]}

    def execute(self, pattern: str, path: str | None = None, include: str | None = None) -> str:
        root = self.workspace.path(path or ".")
        if not root.is_dir() and not root.is_file():  # a FIFO or device could block the search
            why = "not a file or folder" if root.exists() else "path not found"
            raise ToolError(f"{why}: {printable(path)}")
        matches = list(islice(self._search(pattern, root, include), LIMIT))
        if not matches:
            return f"No matches for {pattern!r} in {self.workspace.show(root)}." + skipped(root)
        return capped(matches, lambda m: show_match(self.workspace.show(Path(m[0])), m[1])) + skipped(root)

    def _search(self, pattern: str, root: Path, include: str | None):
        """(file, "line:text") for each match, file by file in path order."""
        try:
            regex = re.compile(pattern)
        except re.error as e:
            raise ToolError(f"invalid regex {pattern!r}: {e}") from None
        # Most files hold no match, so each is first searched whole, once. Patterns that see
        # where a line starts or ends otherwise (\A, \Z, lookbehind) go line by line only.
        whole = None if re.search(r"\\[AZ]|\(\?<[=!]", pattern) else re.compile(pattern, re.M)
        folder, names = (root.parent, [root.name]) if root.is_file() else (root, walk(root))
        for name in names:
            if include and not fnmatchcase(name.rpartition("/")[2], include):
                continue
            file = os.path.join(folder, name)
            # FIFOs and devices are skipped, not opened
            with suppress(OSError, ToolError), open_file(file, file) as f:
                binary = b"\0" in f.read(SNIFF)
                f.seek(0)
                for first, text in blocks(f):
                    if whole and not whole.search(text):
                        continue
                    found = ((file, f"{n}:{line}") for n, line in
                             enumerate(text.removesuffix("\n").split("\n"), first) if regex.search(line))
                    if not binary:
                        yield from found
                    elif next(found, None):  # as grep says it: once, without the bytes
                        yield file, None
                        break


def blocks(f):
    """(first line's number, text) per block of about CHUNK bytes ending at a line's end: bounded memory."""
    n, back = 1, 0
    while data := f.read(CHUNK + back):  # blocks end where CHUNK-sized reads would
        cut = data.rfind(b"\n") + 1 or len(data)  # a line longer than a block is split
        back = len(data) - cut
        f.seek(-back, os.SEEK_CUR)  # the last, unfinished line starts the next block
        yield n, decode(data[:cut]).text
        n += data.count(b"\n")


def show_match(file: str, row: str | None) -> str:
    if row is None:
        return f"{file}: binary file matches"
    n, _, text = row.partition(":")
    return f"{file}:{n}:" + printable(text.rstrip("\r")[:MAX_LINE])


def capped(found: list, show=str) -> str:
    """The first MAX_RESULTS results, shown, and how many more there are ("800+" once LIMIT is hit)."""
    more = f"{len(found) - MAX_RESULTS}{'+' if len(found) >= LIMIT else ''}"
    note = [f"[{more} more not shown; narrow the pattern]"] if len(found) > MAX_RESULTS else []
    return "\n".join([show(f) for f in found[:MAX_RESULTS]] + note)


def skipped(root: Path) -> str:
    """A note naming the keys and credentials beneath root that a search would have entered."""
    names = [str(s.relative_to(root)) for s in secrets() if s.is_relative_to(root) and s != root and
             os.path.lexists(s) and not any(part.startswith(".") for part in s.relative_to(root).parts)]
    return f"\n[Not searched: {', '.join(names)} (keys or credentials); read_file asks the user.]" \
        if names else ""


def mtime(path: str) -> float:
    with suppress(OSError):
        return os.stat(path).st_mtime
    return 0.0


def walk(root: Path):
    """Files under root, relative to it, in path order; not hidden, generated or the root .gitignore's."""
    # .gitignore read simply: '/' patterns match the path, others a name; no ! rules, no nested files
    lines = []
    with suppress(OSError):
        lines = (root / ".gitignore").read_text(errors="replace").splitlines()
    patterns = [p.strip().strip("/") for p in lines if p.strip() and not p.startswith(("#", "!"))]
    names = re.compile("|".join([r"\."] + [translate(p) for p in patterns if "/" not in p]))
    paths = re.compile("|".join(translate(p) for p in patterns if "/" in p) or r"(?!)")
    ignored = lambda path, name: names.match(name) or paths.match(path)
    hidden = {str(s) for s in secrets()}
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not ignored(prefix + d, d)
                         and not secret(os.path.join(folder, d), hidden))
        yield from (prefix + f for f in sorted(files)
                    if not ignored(prefix + f, f) and not secret(os.path.join(folder, f), hidden))


def secret(path: str, hidden: set) -> bool:
    """Keys and credentials (permissions.UNREADABLE), and links into them, are never searched."""
    return path in hidden or os.path.islink(path) and any(Path(path).resolve().is_relative_to(s)
                                                          for s in hidden)


def glob_regex(pattern: str) -> re.Pattern:
    """gitignore-style globs: ** spans folders, * and ? do not cross '/'."""
    if "/" not in pattern.rstrip("/"):
        pattern = "**/" + pattern
    wildcards = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    regex = ""
    for part in re.split(r"(\*\*/|\*\*|\*|\?|\[[^]]+\]|\{[^}]*\})", pattern.lstrip("/")):
        if part.startswith("[") and part.endswith("]") and len(part) > 2:
            regex += "[" + ("^" + part[2:-1] if part[1] == "!" else part[1:-1]) + "]"
        elif part.startswith("{"):
            regex += "(?:" + "|".join(map(re.escape, part[1:-1].split(","))) + ")"
        else:
            regex += wildcards.get(part) or re.escape(part)
    return re.compile(regex + r"\Z")
