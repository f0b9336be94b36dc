"""Sessions: one JSON file per conversation under ~/.nanocoder/sessions/, written atomically
and readable only by the user. The API key is never stored."""
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .atomic import atomic_write


class SessionError(Exception):
    """A session that cannot be found or read, said in one line."""


def home() -> Path:
    return Path.home() / ".nanocoder"


def sessions_dir() -> Path:
    return home() / "sessions"


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


@dataclass
class Session:
    model: str
    cwd: str
    messages: list = field(default_factory=list)
    id: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S-") + os.urandom(3).hex())
    created: float = field(default_factory=time.time)

    def save(self, secret: str | None = None) -> Path:
        data = json.dumps(asdict(self), ensure_ascii=False, indent=1)
        if secret:  # a tool's output (say `env`) may have shown the key; it must not reach disk
            data = data.replace(secret, "[redacted]")
        path = private_dir(sessions_dir()) / f"{self.id}.json"
        atomic_write(path, data.encode(), mode=0o600)
        return path

    @classmethod
    def load(cls, session_id: str) -> "Session":
        path = sessions_dir() / f"{Path(session_id).name.removesuffix('.json')}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: data[k] for k in ("model", "cwd", "messages", "id", "created")})
        except FileNotFoundError:
            raise SessionError(f"no session {session_id!r} in {sessions_dir()}; /sessions lists them") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SessionError(f"session {session_id!r} is unreadable ({type(e).__name__}: {e})") from None


def latest(cwd) -> Session:
    """The session last saved in this folder (for --continue)."""
    for path in sorted(sessions_dir().glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("cwd") == str(cwd):
                return Session.load(path.stem)
        except (OSError, ValueError, AttributeError, SessionError):
            continue  # an unreadable session is skipped, not the end of --continue
    raise SessionError(f"no saved session for {cwd}; start one with nanocoder, or list them with /sessions")


def list_sessions() -> list[dict]:
    """Newest first: id, date, first prompt, size."""
    rows = []
    for path in sorted(sessions_dir().glob("*.json"), reverse=True):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            first = next((m["content"] for m in data["messages"] if m.get("role") == "user"), "")
        except (OSError, ValueError, KeyError, TypeError):
            first, data = "(unreadable)", {}
        rows.append({"id": path.stem, "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime)),
                     "prompt": " ".join(str(first).split())[:60], "messages": len(data.get("messages", [])),
                     "bytes": path.stat().st_size})
    return rows
