"""edit_file: replace one exact, unique piece of a file (so the model says where); answer with the diff."""
import difflib
from pathlib import Path

from .base import ToolError, ToolResult, printable
from .files import FileWriter, TextFile, load_text


class EditFileTool(FileWriter):
    name = "edit_file"
    description = ("Replace old_string with new_string in a file. old_string must match the file "
                   "exactly (whitespace included) and occur exactly once; include surrounding "
                   "lines to make it unique. Read the file first. Returns the diff.")
    parameters = {"type": "object", "properties": {
        "file_path": {"type": "string", "description": "Absolute, or relative to the working directory."},
        "old_string": {"type": "string", "description": "The exact text to replace."},
        "new_string": {"type": "string", "description": "The text to put in its place."}},
        "required": ["file_path", "old_string", "new_string"]}

    def execute(self, file_path: str, old_string: str, new_string: str) -> ToolResult:
        path, file, text = self.write(file_path, old_string, new_string)
        changes = self.changes(path, file, text)
        return ToolResult([changes], diff=changes)

    def plan(self, path: Path, file_path: str, old_string: str, new_string: str) -> tuple[TextFile, str]:
        """(the file, its new text); a ToolError says what stops the edit."""
        name = printable(file_path)
        if not old_string:
            raise ToolError("old_string is empty. To create a file or replace all of it, use write_file.")
        if old_string == new_string:
            raise ToolError("old_string and new_string are the same; nothing would change.")
        try:
            file = load_text(path, name)
        except FileNotFoundError:
            raise ToolError(f"file not found: {name}. To create a file, use write_file.") from None
        if "\0" in file.text:
            raise ToolError(f"{name} is a binary file; edit_file only changes text.")
        if file.newline == "\r\n":  # the text was normalised to "\n"; so must the strings be
            old_string, new_string = old_string.replace("\r\n", "\n"), new_string.replace("\r\n", "\n")
        count = file.text.count(old_string)
        if count == 0:
            raise ToolError(f"old_string not found in {name}.{similar_lines(file.text, old_string)}")
        if count > 1:
            raise ToolError(f"old_string occurs {count} times in {name}; it must occur exactly "
                            "once. Include more surrounding lines to make it unique.")
        return file, file.text.replace(old_string, new_string, 1)


def similar_lines(text: str, old_string: str) -> str:
    """Point at the lines the model probably meant (often a difference in whitespace)."""
    target = next((line.strip() for line in old_string.split("\n") if line.strip()), "")
    matcher = difflib.SequenceMatcher(b=target)  # b is the side SequenceMatcher caches
    scored = []
    for n, line in enumerate(text.split("\n"), 1):
        matcher.set_seq1(line.strip())
        if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6 and matcher.ratio() >= 0.6:
            scored.append((-matcher.ratio(), n, line))
    if not target or not scored:
        return ""
    return " The most similar lines are:\n" + "\n".join(f"{n}: {line[:200]}"
                                                         for _, n, line in sorted(scored)[:3])
