"""Text helpers below both the tools and the checkpoints: bytes as text (a file's codec), text that JSON
can carry, and the unified diff that edits and /diff show."""
import codecs
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

ESCAPED = re.compile(r"\\x([89a-f][0-9a-f])", re.I)  # a byte that printable() showed as \xNN


def printable(text: str) -> str:
    """text that JSON can carry: a byte os.fsdecode made a lone surrogate becomes the four characters \\xNN,
    which Workspace.path reads back; other lone surrogates name nothing and become U+FFFD."""
    byte = lambda m: f"\\x{ord(m[0]) - 0xDC00:02x}" if "\udc80" <= m[0] <= "\udcff" else "\ufffd"
    return re.sub("[\ud800-\udfff]", byte, text)


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
    """A unified diff, as `git diff` shows it (from /dev/null for a new file)."""
    a, b = (shown, shown) if Path(shown).is_absolute() else (f"a/{shown}", f"b/{shown}")
    lines = lambda text: re.findall(r"[^\n]*\n|[^\n]+", text)  # unlike str.splitlines, only at "\n"
    rows = difflib.unified_diff(lines(before), lines(after), "/dev/null" if new else a, b, n=3)
    # A last line without a newline would run into the next one; mark it as `diff` does.
    return "".join(d if d.endswith("\n") else d + "\n\\ No newline at end of file\n"
                   for d in rows).rstrip("\n")
