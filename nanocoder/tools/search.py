"""glob and grep: ripgrep when installed, else a Python walk that skips what rg skips by default. Both take
the first LIMIT results in path order and answer alike (glob newest first)."""
import os
import re
import shutil
import subprocess
import tempfile
from contextlib import suppress
from fnmatch import fnmatchcase, translate
from itertools import islice
from pathlib import Path

from ..permissions import UNREADABLE, secrets
from .base import ToolError, WorkspaceTool, printable
from .files import CHUNK, SNIFF, decode, open_file

# keys and credentials (permissions.UNREADABLE) are never searched: read_file asks for them
EXCLUDE = [a for name in UNREADABLE for a in ("--glob", f"!**/{name}")]
MAX_RESULTS = 200        # lines in an answer
LIMIT = 1_000            # results looked at, in path order: the Python walk stops there
MAX_LINE = 300           # characters of a matching line shown
BINARY_MATCH = re.compile(rb"(.*): binary file matches \(.*\)", re.S)
SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"})


class SearchTool(WorkspaceTool):
    read_only = True

    def permission(self, args: dict) -> tuple[str, str, str]:
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
        if shutil.which("rg"):
            run = subprocess.run(["rg", "--files", "--glob", pattern, *EXCLUDE], cwd=root,
                                 capture_output=True)
            if run.returncode == 2 and not run.stdout:
                raise ToolError(f"invalid pattern {pattern!r}: {run.stderr.decode(errors='replace').strip()}")
            found = sorted(os.fsdecode(run.stdout).split("\n")[:-1], key=path_order)[:LIMIT]
        else:
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
        search = self._ripgrep if shutil.which("rg") else self._python
        matches = list(islice(search(pattern, root, include), LIMIT))
        if not matches:
            return f"No matches for {pattern!r} in {self.workspace.show(root)}." + skipped(root)
        return capped(matches, lambda m: show_match(self.workspace.show(Path(m[0])), m[1])) + skipped(root)

    def _ripgrep(self, pattern: str, root: Path, include: str | None):
        # --heading --null: one "path\0" + "line:text" lines group per file, groups apart by a blank line; a
        # binary file that matches is one line "path: binary file matches (...)". rg searches files in
        # parallel and prints them in any order: sorted here, so all must be read (a later file may come
        # first in path order), but never held whole: --max-count stops each file at LIMIT lines, long lines
        # are cut as they are read, and files past the first LIMIT results in path order are dropped.
        args = ["rg", "--binary", "--max-count", str(LIMIT), "--line-number", "--with-filename", "--heading",
                "--null", "--color", "never"]
        args += (["--glob", include] if include else []) + EXCLUDE  # later globs win
        files: dict[str, list] = {}  # path: its rows ("line:text", or None for a binary file's match)
        rows, kept = None, 0
        with tempfile.TemporaryFile() as errors:  # read only if rg fails
            proc = subprocess.Popen(args + ["-e", pattern, "--", root], cwd=self.workspace.cwd,
                                    stdout=subprocess.PIPE, stderr=errors)
            try:
                for line in _lines(proc.stdout):
                    if not line:  # a group's end
                        rows = None
                    elif rows is not None:
                        rows.append(os.fsdecode(line))
                        kept += 1
                    elif b"\0" in line:
                        name, _, first = line.partition(b"\0")
                        rows = files.setdefault(os.fsdecode(name), [os.fsdecode(first)])
                        kept += 1
                    elif binary := BINARY_MATCH.fullmatch(line):
                        files[os.fsdecode(binary[1])] = [None]
                        kept += 1
                    if kept > 2 * LIMIT:  # keep the files that hold the first LIMIT results in path order
                        kept = _keep_first(files, rows)
                code = proc.wait()
            finally:
                if proc.poll() is None:  # the caller gave up: rg stops too
                    proc.kill()
                    proc.wait()
            if code == 2 and not files:
                errors.seek(0)
                error = errors.read(65536).decode(errors="replace").strip()
                raise ToolError(f"invalid regex {pattern!r} (or unreadable path): {error}")
        # Names and lines as bytes (surrogates where not UTF-8): printable() shows them losslessly.
        return ((name, row) for name in sorted(files, key=path_order) for row in files[name])

    def _python(self, pattern: str, root: Path, include: str | None):
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
                    elif next(found, None):  # as rg and grep say it: once, without the bytes
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


def _lines(stream, most: int = 4 * MAX_LINE + 32):
    """stream's lines without their "\n", each cut at most bytes (the rest is skipped, never held)."""
    with stream:
        while line := stream.readline(most):
            cut = not line.endswith(b"\n")
            while cut and (rest := stream.readline(most)) and not rest.endswith(b"\n"):
                pass
            yield line.removesuffix(b"\n")


def _keep_first(files: dict, current) -> int:
    """Drop the files after those holding the first LIMIT rows in path order (not the one being read);
    the rows kept."""
    kept = 0
    for name in sorted(files, key=path_order):
        if kept >= LIMIT and files[name] is not current:
            del files[name]
        else:
            kept += len(files[name])
    return kept


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


def path_order(path: str) -> str:
    """Sort key of the walk's order: a folder's files, then its subfolders. A string: the GC has nothing to
    chase."""
    folder, _, name = path.rpartition("/")
    return f"{folder}/\0{name}".replace("/", "\1")  # \1 and \0 sort below any character of a name


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
    """Files under root, relative to it, in path order; not hidden ones, generated folders or the root
    .gitignore's."""
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
    """gitignore-style globs, as ripgrep reads them: ** spans folders, * and ? do not cross '/'."""
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
