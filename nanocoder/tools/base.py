"""What every tool is: a name, a JSON schema the model sees, and execute(**kwargs) -> ToolResult (or str).
State the tools share lives on a Workspace owned by one Agent: agents never see each other's `cd`."""
import json
import os
import re
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from ..permissions import READ, read_kind
from ..sandbox import Sandbox

ESCAPED = re.compile(r"\\x([89a-f][0-9a-f])", re.I)  # a byte that printable() showed as \xNN


def printable(text: str) -> str:
    """text that JSON can carry: a byte os.fsdecode made a lone surrogate becomes the four characters \\xNN,
    which Workspace.path reads back; other lone surrogates name nothing and become U+FFFD."""
    byte = lambda m: f"\\x{ord(m[0]) - 0xDC00:02x}" if "\udc80" <= m[0] <= "\udcff" else "\ufffd"
    return re.sub("[\ud800-\udfff]", byte, text)


@dataclass
class ToolResult:
    """What a call gave back. The model reads text() alone; the fields beside it are for the loop, a view
    and tests, so nothing has to read the text to learn how the call went."""
    content: list = field(default_factory=list)  # the text's parts, in order
    is_error: bool = False
    exit_code: int | None = None  # a command's; negative: ended by a signal
    signal: str = ""  # the signal that ended a command ("SIGKILL")
    timed_out: bool = False
    sandbox: str = ""  # the sandbox policy a command ran under ("off": none)
    diff: str = ""  # what a call changed in a file, as a unified diff
    # the same call run outside the sandbox, offered to the user in ask mode: rerun() -> ToolResult
    rerun: object = field(default=None, repr=False, compare=False)
    question: str = ""  # how the rerun is offered
    event: object = None  # an event the loop emits after the call's ToolFinished (todo_write's Todos)

    @classmethod
    def of(cls, value) -> "ToolResult":
        """A tool's return value as a result: a custom tool may still return a str."""
        return value if isinstance(value, ToolResult) else cls([str(value)])

    @classmethod
    def error(cls, message: str) -> "ToolResult":
        return cls([f"Error: {message}"], is_error=True)

    def text(self) -> str:
        """What the model reads: the one place a result becomes text. printable: lone surrogates (undecodable
        bytes) would break the JSON encoder and the save."""
        parts = [part for part in self.content if isinstance(part, str)]
        if self.exit_code is not None:
            parts.append(f"[exit code: {self.exit_code}{f' ({self.signal})' if self.signal else ''}]")
        return printable("\n".join(parts))

    __str__ = text


@dataclass(frozen=True)
class Permission:
    """What a call needs: its kind (nanocoder.permissions), the key "always" remembers, why it is asked."""
    kind: str
    key: str
    why: str = ""


@dataclass
class Arguments:
    """A call's arguments as the model sent them: the dict, or what is wrong with the JSON ({} then)."""
    values: dict
    problem: str | None = None


def arguments(text: str) -> Arguments:
    try:
        values = json.loads(text) if text.strip() else {}
    except (ValueError, RecursionError) as e:  # RecursionError: arguments nested thousands deep
        return Arguments({}, f"the arguments are not valid JSON ({str(e)[:200]}); send one JSON object")
    if isinstance(values, dict):
        return Arguments(values)
    return Arguments({}, f"the arguments are a JSON {type(values).__name__}, not an object")


class ToolError(Exception):
    """A failure the model reads and acts on (a missing file, a bad pattern): ToolResult.error(message)."""


class Tool:
    name: str = ""
    description: str = ""
    parameters: dict = {"type": "object", "properties": {}}
    read_only: bool = False  # read-only tools never need the user's approval

    def execute(self, **kwargs) -> "ToolResult | str":
        raise NotImplementedError

    def cancel(self) -> None:
        """Stop work in progress (the user pressed Ctrl+C). Most tools have nothing to stop."""

    def permission(self, args: dict) -> Permission:
        return Permission("read" if self.read_only else "run", self.name)

    def paths(self, args: dict) -> list:
        """The files this call reads or writes: a batch's calls that share one run in the model's order. None
        known by default, and for bash: ordering all behind a command would end parallelism."""
        return []

    def preview(self, args: dict) -> str:
        """What the call would change, shown when the user is asked (an edit's diff)."""
        return ""

    def schema(self) -> dict:
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}}

    def check_args(self, args) -> str | None:
        """Say what is wrong with the model's arguments (a dict), so it can fix them; None if they fit."""
        props = self.parameters.get("properties", {})
        if missing := [k for k in self.parameters.get("required", []) if k not in args]:
            return f"missing required argument(s): {', '.join(missing)}"
        if unknown := [k for k in args if props and k not in props]:
            return f"unknown argument(s): {', '.join(unknown)}; expected: {', '.join(props)}"
        for key, value in args.items():
            want = props.get(key, {}).get("type")
            bool_as_number = isinstance(value, bool) and want in ("integer", "number")
            if want and (bool_as_number or not isinstance(value, _JSON_TYPES.get(want, object))):
                return f"argument {key!r} must be {want}, got {type(value).__name__}"


class WorkspaceTool(Tool):
    def __init__(self, workspace: "Workspace"):
        self.workspace = workspace

    def reading(self, file_path) -> Permission:
        """The permission to read file_path: keys and credentials are asked for in every mode."""
        with suppress(ToolError):
            kind, why = read_kind(self.workspace.path(file_path or "."))
            return Permission(kind, self.name, printable(why))
        return Permission(READ, self.name)  # no file can have that name: the call can only fail, and say why

    def paths(self, args: dict) -> list:
        name = args.get("file_path")  # read_file, write_file, edit_file
        return [self.workspace.path(name)] if isinstance(name, str) else []


_JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list,
               "object": dict}


class Workspace:
    def __init__(self, cwd=None):
        self.cwd = Path(cwd or os.getcwd()).resolve()
        self.root = self.cwd  # where writes need no extra approval; `cd` does not move it
        self.sandbox, self.sandbox_policy = Sandbox(), "workspace-write"  # for commands: nanocoder/sandbox.py
        self.unix_sockets = False  # --allow-unix-sockets: commands may open named unix sockets
        self.permissions = None  # the agent's (Agent sets it): plan mode runs commands read-only
        self.todos: list[dict] = []  # the agent's todo list (todo_write), saved with the session
        # nanocoder's own git (prompt.py) comes from no folder a command could write: resolved now, once
        writable = self.writable()
        self.trusted_path = [d for d in os.environ.get("PATH", "").split(os.pathsep)
                             if os.path.isabs(d) and not _beneath(Path(d).resolve(), writable)]
        found = [Path(d, "git") for d in self.trusted_path if os.access(Path(d, "git"), os.X_OK)]
        self.git = next((str(g) for g in found if g.is_file() and not _beneath(g.resolve(), writable)), None)
        self.secrets: set[str] = set()  # values kept out of commands' environment (the API key in use)
        self.seen: dict[Path, tuple] = {}  # a file's stamp when the model last read or wrote it
        self._file_locks: dict[Path, threading.Lock] = {}

    def path(self, file_path: str) -> Path:
        """The path the model means. A \\xNN that printable() wrote is read back as that byte when only the
        bytes name a file (or a new file's folder): a name really spelt with "\\x" stays reachable."""
        if "\0" in file_path:
            raise ToolError(f"not a valid path: {file_path!r} holds a NUL byte (\\0), "
                            "which no file name can.")
        try:
            path = (self.cwd / Path(file_path).expanduser()).resolve()
            raw = ESCAPED.sub(lambda m: chr(0xDC00 + int(m[1], 16)), file_path)
            if raw == file_path or os.path.lexists(path):
                return path
            other = (self.cwd / Path(raw).expanduser()).resolve()
        except ValueError:  # a lone surrogate that os.fsdecode never makes: no file has that name
            raise ToolError(f"not a valid path: {file_path!r}") from None
        return (other if os.path.lexists(other) or (other.parent.is_dir() and not path.parent.is_dir())
                else path)

    def policy(self) -> str:
        """The sandbox policy commands run under now: read-only in plan mode, whatever /sandbox chose."""
        return "read-only" if self.permissions and self.permissions.mode == "plan" else self.sandbox_policy

    def writable(self) -> list[Path]:
        """Where the workspace-write policy lets commands write (the workspace, temp, caches), resolved."""
        return [Path(folder).resolve() for folder in self.sandbox.writable(self.root)]

    def show(self, path: Path) -> str:
        """How to name a path to the model: relative to cwd when inside it, else absolute; printable."""
        return printable(str(path.relative_to(self.cwd) if path.is_relative_to(self.cwd) else path))

    def remember(self, path: Path) -> None:
        self.seen[path] = _stamp(path)

    def stale(self, path: Path) -> bool:
        """The file changed on disk (a formatter, the user, a sub-agent) since the model read it."""
        return path in self.seen and self.seen[path] != _stamp(path)

    def file_lock(self, path: Path) -> threading.Lock:
        """One lock per file, so parallel edits of one file happen one after the other."""
        return self._file_locks.setdefault(path, threading.Lock())  # atomic: one lock, whoever asks first


def _beneath(path: Path, folders) -> bool:
    return any(path.is_relative_to(folder) for folder in folders)


def _stamp(path: Path) -> tuple:
    with suppress(OSError):
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    return ()
