"""JSON session persistence: atomic, private, no API key, listed, resumable, clear errors."""
import json
import stat

import pytest

from nanocoder.session import Session, SessionError, list_sessions, sessions_dir


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_round_trip_private_and_without_the_key(home):
    key = "sk-test-SECRET-123"
    s = Session(model="m", cwd="/w", messages=[
        {"role": "system", "content": "sys"}, {"role": "user", "content": "fix the bug"},
        {"role": "tool", "tool_call_id": "1", "content": f"OPENAI_API_KEY={key}"}])
    path = s.save(secret=key)
    assert path.parent == home / ".nanocoder" / "sessions"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert key not in path.read_text()
    loaded = Session.load(s.id)
    assert loaded.messages[1] == {"role": "user", "content": "fix the bug"}
    assert loaded.model == "m" and loaded.id == s.id
    assert list(path.parent.glob(".*tmp")) == []


def test_ids_are_unique_and_listed_newest_first():
    a, b = Session(model="m", cwd="/"), Session(model="m", cwd="/")
    assert a.id != b.id
    a.messages = [{"role": "user", "content": "first   prompt\nwith lines"}]
    a.save()
    b.save()
    rows = list_sessions()
    assert {r["id"] for r in rows} == {a.id, b.id}
    row = next(r for r in rows if r["id"] == a.id)
    assert row["prompt"] == "first prompt with lines" and row["messages"] == 1 and row["bytes"] > 0


def test_missing_and_corrupt_sessions_say_so():
    with pytest.raises(SessionError, match="no session 'nope'"):
        Session.load("nope")
    sessions_dir().mkdir(parents=True)
    (sessions_dir() / "bad.json").write_text("{not json")
    with pytest.raises(SessionError, match="unreadable"):
        Session.load("bad")
    (sessions_dir() / "partial.json").write_text(json.dumps({"model": "m"}))
    with pytest.raises(SessionError, match="unreadable"):
        Session.load("partial")
    assert any(r["prompt"] == "(unreadable)" for r in list_sessions())
