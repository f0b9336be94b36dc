"""read_file and write_file, and the text codec and diff they share with edit_file.

A file is loaded as text with "\\n" newlines and saved back in its own encoding, line endings
and mode, so changing one line of a CRLF or latin-1 file leaves every other byte as it was.
"""
import codecs
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..permissions import EDIT, path_kind
from ..atomic import atomic_write
from .base import ToolError, WorkspaceTool

MAX_LINE = 2000          # characters per line shown
MAX_OUTPUT = 100_000     # characters per read_file answer
SNIFF = 8192             # a NUL byte in this many leading bytes means binary


@dataclass
class TextFile:
    text: str
    encoding: str = "utf-8"
    newline: str = "\n"
    bom: bool = False


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:SNIFF]


def decode(data: bytes) -> TextFile:
    bom = data.startswith(codecs.BOM_UTF8)
    try:
        text, encoding = data[3 if bom else 0:].decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # latin-1 maps every byte to one character and back, so untouched bytes survive an edit.
        text, encoding, bom = data.decode("latin-1"), "latin-1", False
    # Normalise only when every newline is CRLF: a mixed file is kept as it is, byte for byte.
    if "\r\n" in text and text.count("\r\n") == text.count("\n"):
        return TextFile(text.replace("\r\n", "\n"), encoding, "\r\n", bom)
    return TextFile(text, encoding, "\n", bom)


def load_text(path: Path) -> TextFile:
    return decode(path.read_bytes())


def save_text(path: Path, text: str, like: TextFile | None = None) -> None:
    """Raises UnicodeEncodeError, before touching the file, if the encoding cannot hold text."""
    like = like or TextFile("")
    data = text.replace("\n", like.newline).encode(like.encoding)
    atomic_write(path, codecs.BOM_UTF8 + data if like.bom else data)


def save_or_raise(path: Path, text: str, like: TextFile | None, shown: str) -> None:
    """save_text, with a failure raised as a ToolError for the model (the file left unchanged)."""
    try:
        save_text(path, text, like)
    except UnicodeEncodeError as e:
        raise ToolError(f"{shown} is {e.encoding}, which cannot hold {e.object[e.start:e.end]!r}; "
                        "the file was not changed.") from None
    except OSError as e:
        raise ToolError(f"cannot write {shown}: {e.strerror or e}; the file was not changed.") from None


def diff(shown: str, before: str, after: str) -> str:
    """A unified diff, as `git diff` shows it."""
    a, b = (shown, shown) if Path(shown).is_absolute() else (f"a/{shown}", f"b/{shown}")
    lines_ = difflib.unified_diff(lines(before), lines(after), a, b, n=3)
    # A last line without a newline would run into the next one; mark it as `diff` does.
    no_eol = "\n\\ No newline at end of file\n"
    return "".join(d if d.endswith("\n") else d + no_eol for d in lines_).rstrip("\n")


def lines(text: str) -> list[str]:
    """Lines with their ends; unlike str.splitlines, splits only at "\\n"."""
    return re.findall(r"[^\n]*\n|[^\n]+", text)


def similar_names(path: Path, shown: str) -> str:
    try:
        names = os.listdir(path.parent)
    except OSError:
        return ""
    close = difflib.get_close_matches(path.name, names, n=3, cutoff=0.6)
    return f" Did you mean: {', '.join(str(Path(shown).parent / n) for n in close)}?" if close else ""


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

    def execute(self, file_path: str, offset: int | None = None, limit: int | None = None) -> str:
        path = self.workspace.path(file_path)
        if path.is_dir():
            raise ToolError(f"{file_path} is a directory, not a file; use glob to list its files.")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ToolError(f"file not found: {file_path}.{similar_names(path, file_path)}") from None
        except OSError as e:
            raise ToolError(f"cannot read {file_path}: {e.strerror or e}") from None
        self.workspace.remember(path)
        if is_binary(data):
            return f"Binary file {file_path} ({len(data):,} bytes); not shown."
        text = decode(data).text
        if not text:
            return f"{file_path} is empty."
        lines = text.removesuffix("\n").split("\n")
        first = max(1, offset or 1)
        if first > len(lines):
            raise ToolError(f"offset {first} is past the end; {file_path} has {len(lines)} lines.")
        last = min(len(lines), first - 1 + max(1, limit or 2000))
        out, size = [], 0
        for n in range(first, last + 1):
            line = lines[n - 1].rstrip("\r")
            if len(line) > MAX_LINE:
                line = line[:MAX_LINE] + " [... line cut]"
            row = f"{n:>6}\t{line}"
            if out and size + len(row) > MAX_OUTPUT:
                last = n - 1
                break
            out.append(row)
            size += len(row) + 1
        if last < len(lines):
            out.append(f"[Showed lines {first}-{last} of {len(lines)}. Read on with offset={last + 1}.]")
        return "\n".join(out)


class FileWriter(WorkspaceTool):
    """A tool that writes the file at args["file_path"]: asking depends on where that is."""

    def permission(self, args: dict) -> tuple[str, str, str]:
        kind, reason = path_kind(self.workspace.path(args.get("file_path", "")), self.workspace.root)
        # "always" for edits in the workspace does not stretch to files outside it
        return kind, self.name if kind == EDIT else f"{self.name} ({kind})", reason


class WriteFileTool(FileWriter):
    name = "write_file"
    description = ("Write a whole file, creating it and its folders if needed. An existing file is "
                   "replaced but keeps its encoding, line endings and permissions. Prefer "
                   "edit_file for changing part of a file.")
    parameters = {"type": "object", "properties": {
        "file_path": {"type": "string", "description": "Absolute, or relative to the working directory."},
        "content": {"type": "string", "description": "The complete new content."}},
        "required": ["file_path", "content"]}

    def execute(self, file_path: str, content: str) -> str:
        path = self.workspace.path(file_path)
        if path.is_dir():
            raise ToolError(f"{file_path} is a directory.")
        with self.workspace.file_lock(path):
            existed = path.exists()
            if self.workspace.stale(path):
                raise ToolError(f"{file_path} changed on disk since you last read it; read it again "
                                "so that nothing new is lost. The file was not changed.")
            try:
                like = load_text(path) if existed else None
            except OSError as e:
                raise ToolError(f"cannot read {file_path}: {e.strerror or e}") from None
            if like and "\0" in like.text:
                like = None  # replacing a binary file: nothing worth keeping but its mode
            if like and like.newline == "\r\n":
                content = content.replace("\r\n", "\n")
            save_or_raise(path, content, like, file_path)
            self.workspace.remember(path)
        self.workspace.changed_files.add(str(path))
        lines = content.count("\n") + (not content.endswith("\n") and content != "")
        return f"{'Overwrote' if existed else 'Created'} {self.workspace.show(path)} ({lines} lines)"

    def preview(self, args: dict) -> str:
        path = self.workspace.path(args["file_path"])
        try:
            before = load_text(path).text
        except OSError:
            before = ""
        return diff(self.workspace.show(path), before, args["content"].replace("\r\n", "\n"))
