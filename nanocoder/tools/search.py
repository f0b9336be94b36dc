"""glob and grep: find files by name and lines by regex.

ripgrep does the work when installed (fast, honours every .gitignore); otherwise a Python walk
skips hidden and generated folders, the root .gitignore's names, binary and very large files.
Paths in answers are relative to the working directory, as the model uses them in other tools.
"""
import os
import re
import shutil
import subprocess
from fnmatch import fnmatchcase
from pathlib import Path

from .base import Tool
from .files import decode, is_binary

MAX_RESULTS = 200
MAX_LINE = 300           # characters of a matching line shown
MAX_FILE = 2_000_000     # grep skips larger files
CR = "\r"                # f-strings cannot hold a backslash before Python 3.12
SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"})


class GlobTool(Tool):
    name = "glob"
    description = ("Find files by name pattern, e.g. `**/*.py` or `src/**/test_*.ts`; a pattern "
                   "without `/` matches names at any depth. Newest first.")
    parameters = {"type": "object", "properties": {
        "pattern": {"type": "string", "description": "Glob pattern; ** spans folders, {a,b} alternatives."},
        "path": {"type": "string", "description": "Folder to search (default: the working directory)."}},
        "required": ["pattern"]}
    read_only = True

    def __init__(self, workspace):
        self.workspace = workspace

    def execute(self, pattern: str, path: str | None = None) -> str:
        root = self.workspace.path(path or ".")
        if not root.is_dir():
            return f"Error: {'not a folder' if root.exists() else 'path not found'}: {path}"
        if shutil.which("rg"):
            run = subprocess.run(["rg", "--files", "--glob", pattern], cwd=root, capture_output=True)
            if run.returncode == 2 and not run.stdout:
                return f"Error: invalid pattern {pattern!r}: {run.stderr.decode(errors='replace')}".strip()
            found = [root / p for p in run.stdout.decode(errors="replace").split("\n")[:-1]]
        else:
            regex = glob_regex(pattern)
            found = [f for f in walk(root) if regex.match(f.relative_to(root).as_posix())]
        if not found:
            return f"No files match {pattern} in {self.workspace.show(root)}."
        found.sort(key=mtime, reverse=True)
        return capped([self.workspace.show(f) for f in found])


class GrepTool(Tool):
    name = "grep"
    description = ("Search file contents with a regular expression. Answers `path:line:text`. "
                   "Narrow it with path (a file or folder) and include (a file name glob like *.py).")
    parameters = {"type": "object", "properties": {
        "pattern": {"type": "string", "description": "Regular expression to search for."},
        "path": {"type": "string", "description": "File or folder (default: the working directory)."},
        "include": {"type": "string", "description": "Only files whose names match this glob, e.g. *.py."}},
        "required": ["pattern"]}
    read_only = True

    def __init__(self, workspace):
        self.workspace = workspace

    def execute(self, pattern: str, path: str | None = None, include: str | None = None) -> str:
        root = self.workspace.path(path or ".")
        if not root.exists():
            return f"Error: path not found: {path}"
        if shutil.which("rg"):
            matches = self._ripgrep(pattern, root, include)
        else:
            try:
                regex = re.compile(pattern)
            except re.error as e:
                return f"Error: invalid regex {pattern!r}: {e}"
            matches = self._python(regex, root, include)
        if isinstance(matches, str):
            return matches
        if not matches:
            return f"No matches for {pattern!r} in {self.workspace.show(root)}."
        return capped(matches)

    def _ripgrep(self, pattern: str, root: Path, include: str | None) -> list[str] | str:
        # --null puts a NUL after the path, so a ':' in a file name cannot confuse the parsing.
        args = ["rg", "--line-number", "--no-heading", "--color", "never", "--with-filename",
                "--null", "--sort", "path"] + (["--glob", include] if include else [])
        run = subprocess.run(args + ["-e", pattern, "--", self.workspace.show(root)],
                             cwd=self.workspace.cwd, capture_output=True)
        if run.returncode == 2 and not run.stdout:
            error = run.stderr.decode(errors="replace").strip()
            return f"Error: invalid regex {pattern!r} (or unreadable path): {error}"
        matches = []
        for row in run.stdout.decode(errors="replace").split("\n")[:-1]:
            file, _, rest = row.partition("\0")
            n, _, text = rest.partition(":")
            file = file[2:] if file.startswith("./") else file
            matches.append(f"{file}:{n}:{text.rstrip(CR)[:MAX_LINE]}")
        return matches

    def _python(self, regex: re.Pattern, root: Path, include: str | None) -> list[str]:
        matches = []
        for file in [root] if root.is_file() else walk(root):
            if include and not fnmatchcase(file.name, include):
                continue
            try:
                if file.stat().st_size > MAX_FILE or is_binary(data := file.read_bytes()):
                    continue
            except OSError:
                continue
            for n, line in enumerate(decode(data).text.split("\n"), 1):
                if regex.search(line):
                    matches.append(f"{self.workspace.show(file)}:{n}:{line.rstrip(CR)[:MAX_LINE]}")
        return matches


def capped(lines: list[str]) -> str:
    more = len(lines) - MAX_RESULTS
    note = [f"[{more} more not shown; narrow the pattern]"] if more > 0 else []
    return "\n".join(lines[:MAX_RESULTS] + note)


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def walk(root: Path):
    """Files under root in path order, like ripgrep's defaults: no hidden or ignored names."""
    skip = skipper(root)
    for folder, dirs, files in os.walk(root):
        prefix = "" if Path(folder) == root else Path(folder).relative_to(root).as_posix() + "/"
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not skip(prefix + d))
        yield from (Path(folder, f) for f in sorted(files) if not skip(prefix + f))


def skipper(root: Path):
    """Whether to skip a path (relative to root): hidden, or named by a plain pattern of the
    root .gitignore. Negations (!) and nested .gitignore files are not supported."""
    try:
        lines = (root / ".gitignore").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    patterns = [p.strip().strip("/") for p in lines if p.strip() and not p.startswith(("#", "!"))]

    def skip(rel: str) -> bool:
        name = rel.rpartition("/")[2]
        return name.startswith(".") or any(fnmatchcase(rel if "/" in p else name, p) for p in patterns)
    return skip


def glob_regex(pattern: str) -> re.Pattern:
    """gitignore-style globs, as ripgrep reads them: ** spans folders, * and ? do not cross '/'."""
    if "/" not in pattern.rstrip("/"):
        pattern = "**/" + pattern
    regex = ""
    for part in re.split(r"(\*\*/|\*\*|\*|\?|\[[^]]+\]|\{[^}]*\})", pattern.lstrip("/")):
        if part == "**/":
            regex += "(?:.*/)?"
        elif part in ("**", "*", "?"):
            regex += {"**": ".*", "*": "[^/]*", "?": "[^/]"}[part]
        elif part.startswith("[") and part.endswith("]") and len(part) > 2:
            regex += "[" + ("^" + part[2:-1] if part[1] == "!" else part[1:-1]) + "]"
        elif part.startswith("{"):
            regex += "(?:" + "|".join(map(re.escape, part[1:-1].split(","))) + ")"
        else:
            regex += re.escape(part)
    return re.compile(regex + r"\Z")
