"""Sessions: one JSON file per conversation in ~/.nanocoder/sessions/, written atomically, readable only by
the user, stored as it was (the API key never reaches a command's environment: tool output cannot hold it)."""
import fcntl
import json
import os
import stat
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields
from pathlib import Path

from .atomic import atomic_write, sweep


MAX_BYTES = 64 << 20  # a session file larger than this is not read (compression keeps real ones far smaller)


class SessionError(Exception):
    """A session that cannot be found or read, said in one line."""


def home() -> Path:
    return Path.home() / ".nanocoder"


def sessions_dir() -> Path:
    return home() / "sessions"


def private_dir(path: Path) -> Path:
    """path, made if needed, with it and each folder up to ~/.nanocoder readable only by the user."""
    for folder in [p for p in (path, *path.parents) if p.is_relative_to(home())][::-1]:
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
    return path


def _new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + os.urandom(3).hex()


@dataclass
class Session:
    model: str
    cwd: str
    messages: list = field(default_factory=list)
    id: str = field(default_factory=_new_id)
    created: float = field(default_factory=time.time)
    title: str = ""  # the first prompt, kept for /sessions when /compact summarises it away
    todos: list = field(default_factory=list)  # the agent's todo list (todo_write)
    checkpoints: list = field(default_factory=list)  # each turn's snapshots (checkpoints.Step, as dicts)

    def __post_init__(self):
        self.forked_from = None  # set when another process saved this session meanwhile
        self._stamp = None  # the file as we last wrote or read it

    def save(self) -> Path:
        folder = private_dir(sessions_dir())
        path = folder / f"{self.id}.json"
        self.title = self.title or _first_prompt(self.messages)
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # asdict would deep-copy the history
        # ASCII escapes keep every string, even a folder named in bytes that are not UTF-8
        raw = json.dumps(data, indent=1).encode()
        with _locked(path):  # the check and the replace, as one step for every nanocoder on this session
            if self._stamp is not None and _stamp(path) != self._stamp:  # another process saved it meanwhile:
                # this conversation goes on under a new id, so neither loses a turn
                self.forked_from, self.id, self.created = self.id, _new_id(), time.time()
                data.update(id=self.id, created=self.created)
                raw, path = json.dumps(data, indent=1).encode(), folder / f"{self.id}.json"
            atomic_write(path, raw, mode=0o600)
            self._stamp = _stamp(path)
        return path

    def restart(self) -> None:
        """A new conversation in this object (/reset): a new id; the old file stays as it was."""
        self.id, self.created, self.messages, self._stamp, self.title = _new_id(), time.time(), [], None, ""

    @classmethod
    def load(cls, session_id: str) -> "Session":
        path = sessions_dir() / f"{Path(session_id).name.removesuffix('.json')}.json"
        if not os.path.lexists(path):
            raise SessionError(f"no session {session_id!r} in {sessions_dir()}; "
                               "nanocoder --sessions lists them")
        data, st = _read(path)
        kept = ("model", "cwd", "messages", "created", "title", "checkpoints")
        session = cls(**{k: v for k, v in data.items() if k in kept})
        session.todos = [t for t in data["todos"] if isinstance(t, dict)
                         and all(isinstance(t.get(key), str) for key in ("content", "status", "activeForm"))]
        # stamped from the very file read: a save in between makes the next save fork, never overwrite
        session.id, session._stamp = path.stem, (st.st_mtime_ns, st.st_size, st.st_ino)
        return session


@contextmanager
def _locked(path: Path):
    """An exclusive lock on the sessions folder itself (flock works on a folder's descriptor): no lock files
    to leave behind, and a save holds it for milliseconds."""
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _stamp(path: Path):
    with suppress(OSError):
        st = path.stat()
        return st.st_mtime_ns, st.st_size, st.st_ino
    return None


def _read(path: Path) -> tuple[dict, os.stat_result]:
    """A session file's fields, checked for the shape the agent needs, and its stat; or SessionError. Only a
    regular file up to MAX_BYTES is read: a FIFO would hang, a link to /dev/zero would fill the memory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise SessionError(f"session {path.stem!r} is not a regular file")
            if st.st_size > MAX_BYTES:
                raise SessionError(f"session {path.stem!r} is larger than {MAX_BYTES >> 20} MB")
            data = json.loads(f.read(MAX_BYTES + 1).decode("utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: JSON nested thousands deep
        raise SessionError(f"session {path.stem!r} is unreadable ({type(e).__name__}: {e})"[:300]) from None
    if not (isinstance(data, dict) and isinstance(data.get("messages"), list)
            and all(_is_message(m) for m in data["messages"])
            and isinstance(data.get("model"), str) and isinstance(data.get("cwd"), str)):
        raise SessionError(f"session {path.stem!r} is not a nanocoder session")
    for name, kind in (("title", str), ("todos", list), ("checkpoints", list)):  # older versions lack them
        data[name] = data.get(name) if isinstance(data.get(name), kind) else kind()
    return data, st


def _is_message(m) -> bool:
    """A message whose parts have the types repair() and the agent rely on (their values are repaired)."""
    calls = m.get("tool_calls") if isinstance(m, dict) else None
    return isinstance(m, dict) and isinstance(m.get("role"), str) and (
        calls is None or isinstance(calls, list)
        and all(isinstance(c, dict) and isinstance(c.get("function", {}), dict) for c in calls))


def list_sessions(cwd=None) -> list[dict]:
    """Readable sessions, this folder's first, then newest first: id, date, folder, first prompt, size."""
    sweep(sessions_dir())  # temp files of a process killed mid-save
    rows = []
    for path in sessions_dir().glob("*.json"):
        try:
            data, st = _read(path)
        except SessionError:
            continue  # a broken, dangling or special file is not the end of the list
        first = data["title"] or _first_prompt(data["messages"])
        rows.append({"id": path.stem, "mtime": st.st_mtime, "cwd": data["cwd"], "bytes": st.st_size,
                     "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(st.st_mtime)),
                     "prompt": " ".join(str(first).split())[:60], "messages": len(data["messages"])})
    return sorted(rows, key=lambda r: (r["cwd"] != str(cwd), -r["mtime"]))


def _first_prompt(messages) -> str:
    """The first user message: the title of a session saved before titles (after /compact, the summary)."""
    first = next((str(m.get("content")) for m in messages if m.get("role") == "user"), "")
    return " ".join(first[:1000].split())[:200]


def latest(cwd) -> Session:
    """The session last saved in this folder (for --continue)."""
    for row in list_sessions(cwd):
        if row["cwd"] == str(cwd):
            return Session.load(row["id"])
    raise SessionError(f"no saved session for {cwd}; start one with nanocoder, or list them with /sessions")
