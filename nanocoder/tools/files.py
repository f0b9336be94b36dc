"""read_file and write_file, and the codec and diff they share with edit_file. A file is saved back in its own
encoding, line endings and mode: changing one line leaves every other byte as it was."""
import codecs
import difflib
import os
import re
import stat
from contextlib import suppress
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from ..permissions import EDIT, READ, path_kind
from ..atomic import atomic_write
from ..context import head_tail
from .base import Permission, ToolError, ToolResult, WorkspaceTool, printable

MAX_LINE = 2000          # characters per line shown
MAX_OUTPUT = 100_000     # characters per read_file answer
SNIFF = 8192             # a NUL byte in this many leading bytes means binary
LINE_BYTES = 4 * MAX_LINE + 3  # bytes read of a line: MAX_LINE characters of up to 4 bytes, and "\r\n"
CHUNK = 1 << 20          # bytes read at a time where whole lines are not needed
SCAN = 64 << 20          # read_file counts the lines after those shown only up to this many bytes
# edit_file and write_file change files up to this size; a bigger one is for bash's tools (it took 3.7 GB
# and 55 s to edit a 169 MB file)
MAX_EDIT = 10 << 20
MAX_DIFF = 30_000        # characters of a diff shown: its head and tail


@dataclass
class TextFile:
    text: str
    encoding: str = "utf-8"  # "utf-8-sig" for a file that starts with a BOM: it is written back
    newline: str = "\n"


def decode(data: bytes) -> TextFile:
    encoding = "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        # latin-1 maps every byte to one character and back, so untouched bytes survive an edit.
        text, encoding = data.decode("latin-1"), "latin-1"
    # Normalise only when every newline is CRLF: a mixed file is kept as it is, byte for byte.
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
    return TextFile(text.replace("\r\n", "\n") if crlf else text, encoding, "\r\n" if crlf else "\n")


def diff(shown: str, before: str, after: str, new: bool = False) -> str:
    """A unified diff as `git diff` shows it (from /dev/null for a new file); its head and tail when long."""
    a, b = (shown, shown) if Path(shown).is_absolute() else (f"a/{shown}", f"b/{shown}")
    lines = lambda text: re.findall(r"[^\n]*\n|[^\n]+", text)  # unlike str.splitlines, only at "\n"
    rows = difflib.unified_diff(lines(before), lines(after), "/dev/null" if new else a, b, n=3)
    # A last line without a newline would run into the next one; mark it as `diff` does.
    text = "".join(d if d.endswith("\n") else d + "\n\\ No newline at end of file\n" for d in rows)
    return head_tail(text.rstrip("\n"), MAX_DIFF, "characters of the diff")


def load_text(path: Path, shown: str = "") -> TextFile:
    """The whole file (FileNotFoundError if missing; ToolError if no file (open_file) or over MAX_EDIT)."""
    shown = shown or printable(str(path))
    with open_file(path, shown) as f:
        if (size := os.fstat(f.fileno()).st_size) > MAX_EDIT:
            raise ToolError(f"{shown} is {size:,} bytes, over the {MAX_EDIT >> 20} MB that edit_file and "
                            "write_file change; use bash (sed -i, a script, patch) for it. "
                            "It was not changed.")
        return decode(f.read(MAX_EDIT + 1))


def save_text(path: Path, text: str, like: TextFile | None = None) -> None:
    """Raises UnicodeEncodeError, before touching the file, if the encoding cannot hold text."""
    like = like or TextFile("")
    atomic_write(path, text.replace("\n", like.newline).encode(like.encoding))


def similar_names(path: Path, shown: str) -> str:
    with suppress(OSError):  # no folder: no names
        if close := difflib.get_close_matches(path.name, os.listdir(path.parent), n=3):
            return printable(f" Did you mean: {', '.join(str(Path(shown).parent / n) for n in close)}?")
    return ""


def open_file(path, shown: str):
    """path opened to read (FileNotFoundError if missing); anything but a file is a ToolError at once."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise ToolError(f"{shown} is a directory, not a file; use glob to list its files.")
        if not stat.S_ISREG(mode):
            kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
            raise ToolError(f"{shown} is a {kind}, not a file; reading it could block or never end.")
        # O_NONBLOCK: should a FIFO take the file's place meanwhile, opening it still does not wait.
        return open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb")
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ToolError(f"cannot read {shown}: {e.strerror or e}") from None


def count_lines(f, size: int) -> int | None:
    """Lines from f's position to the end, or None when that is over SCAN bytes away."""
    if size - f.tell() > SCAN:
        return None
    count, end = 0, b"\n"
    for chunk in islice(iter(lambda: f.read(CHUNK), b""), SCAN // CHUNK):  # a file may grow meanwhile
        count, end = count + chunk.count(b"\n"), chunk[-1:]
    return None if f.read(1) else count + (end != b"\n")


class ReadFileTool(WorkspaceTool):
    name = "read_file"
    description = ("Read a text file. Lines come numbered like `cat -n`; the numbers are not part "
                   "of the file. Reads up to 2000 lines; use offset and limit for long files.")
    parameters = {"type": "object", "properties": {
        "file_path": {"type": "string", "description": "Absolute, or relative to the working directory."},
        "offset": {"type": "integer", "description": "First line to read, 1-based."},
        "limit": {"type": "integer", "description": "How many lines to read (default 2000)."}},
        "required": ["file_path"]}
    read_only = True

    def permission(self, args: dict) -> Permission:
        return self.reading(args.get("file_path", ""))

    def execute(self, file_path: str, offset: int | None = None, limit: int | None = None) -> str:
        path, name = self.workspace.path(file_path), printable(file_path)
        try:
            f = open_file(path, name)
        except FileNotFoundError:
            raise ToolError(f"file not found: {name}.{similar_names(path, name)}") from None
        with f:  # streamed: only the lines asked for, each cut at LINE_BYTES, are ever held
            self.workspace.remember(path)
            size, head = os.fstat(f.fileno()).st_size, f.read(SNIFF)
            if b"\0" in head:
                return f"Binary file {name} ({size:,} bytes); not shown."
            if not head:
                return f"{name} is empty."
            f.seek(0)
            first, picked, n, held = max(1, offset or 1), [], 0, 0
            for n, line in enumerate(iter(lambda: f.readline(LINE_BYTES), b""), 1):
                cut = len(line) == LINE_BYTES and not line.endswith(b"\n")
                while cut and (rest := f.readline(CHUNK)) and not rest.endswith(b"\n"):
                    pass  # the rest of a cut line is skipped, never held whole
                if n >= first:
                    picked.append((line.removeprefix(codecs.BOM_UTF8) if n == 1 else line, cut))
                    held += len(line)
                    if len(picked) == max(1, limit or 2000) or held > 4 * MAX_OUTPUT:
                        break
            if not picked:
                raise ToolError(f"offset {first} is past the end; {name} has {n} lines.")
            more = count_lines(f, size)
        try:  # UTF-8 if every line shown is, else latin-1, as decode() judges a whole file
            texts = [codecs.utf_8_decode(line, "strict", not cut)[0] for line, cut in picked]
        except UnicodeDecodeError:  # (a cut line may end inside a character: not final)
            texts = [line.decode("latin-1") for line, _ in picked]
        out, chars = [], 0
        for text, (_, cut) in zip(texts, picked):
            text = text.removesuffix("\n").rstrip("\r")
            text = text[:MAX_LINE] + " [... line cut]" if cut or len(text) > MAX_LINE else text
            row = f"{first + len(out):>6}\t{text}"
            if out and chars + len(row) > MAX_OUTPUT:
                break
            out.append(row)
            chars += len(row) + 1
        last = first + len(out) - 1
        if more is None or last < n + more:
            total = f"a {size:,}-byte file, too long to count its lines" if more is None else n + more
            out.append(f"[Showed lines {first}-{last} of {total}. Read on with offset={last + 1}.]")
        return "\n".join(out)


class FileWriter(WorkspaceTool):
    """A tool that writes the file at args["file_path"] as plan() says: asking depends on where that is."""

    def permission(self, args: dict) -> Permission:
        with suppress(ToolError):
            path = self.workspace.path(args.get("file_path", ""))
            kind, reason = path_kind(path, self.workspace.root, writable=self.workspace.writable())
            # "always" covers this file's folder in the workspace, this one file outside it
            scope = f"on files directly in {path.parent}" if kind == EDIT else f"on {path}"
            return Permission(kind, f"{self.name} {scope}", printable(reason))
        return Permission(READ, self.name)  # no file can have that name: the call can only fail, and say why

    def write(self, file_path: str, *change) -> tuple[Path, TextFile | None, str]:
        """Save what plan() makes: (path, the file replaced or None if new, the text); a ToolError changes
        nothing."""
        path, name = self.workspace.path(file_path), printable(file_path)
        # held from read to write: parallel edits each see the last one's result
        with self.workspace.file_lock(path):
            if self.workspace.stale(path):
                raise ToolError(f"{name} changed on disk since you last read it; read it again "
                                "so that nothing new is lost. The file was not changed.")
            file, text = self.plan(path, file_path, *change)
            try:
                save_text(path, text, file)
            except UnicodeEncodeError as e:
                raise ToolError(f"{name} is {e.encoding}, which cannot hold {e.object[e.start:e.end]!r}; "
                                "the file was not changed.") from None
            except OSError as e:
                raise ToolError(f"cannot write {name}: {e.strerror or e}; "
                                "the file was not changed.") from None
            self.workspace.remember(path)
        return path, file, text

    def preview(self, args: dict) -> str:
        with suppress(ToolError, OSError):  # else the call will fail, and say why
            path = self.workspace.path(args["file_path"])
            return self.changes(path, *self.plan(path, **args))
        return ""

    def changes(self, path: Path, file: TextFile | None, text: str) -> str:
        return diff(self.workspace.show(path), file.text if file else "", text, new=file is None)


class WriteFileTool(FileWriter):
    name = "write_file"
    description = ("Write a whole file, creating it and its folders if needed. "
                   "An existing file is replaced but keeps its encoding, line endings and permissions. "
                   "Prefer edit_file for changing part of a file.")
    parameters = {"type": "object", "properties": {
        "file_path": {"type": "string", "description": "Absolute, or relative to the working directory."},
        "content": {"type": "string", "description": "The complete new content."}},
        "required": ["file_path", "content"]}

    def execute(self, file_path: str, content: str) -> ToolResult:
        path, like, content = self.write(file_path, content)
        lines = content.count("\n") + (not content.endswith("\n") and content != "")
        changes = self.changes(path, like, content) if len(content) < MAX_OUTPUT else ""
        shown = self.workspace.show(path)
        said = f"{'Overwrote' if like else 'Created'} {shown} ({lines} line{'s' * (lines != 1)})"
        return ToolResult([said], diff=changes)

    def plan(self, path: Path, file_path: str, content: str) -> tuple[TextFile | None, str]:
        """(the file it replaces, None if new; the text to write); a ToolError says what stops the write."""
        try:
            like = load_text(path, printable(file_path))
        except FileNotFoundError:
            return None, content
        if "\0" in like.text:  # replacing a binary file: nothing worth keeping but its mode
            return TextFile(""), content
        return like, content.replace("\r\n", "\n") if like.newline == "\r\n" else content
