"""JSON session persistence: atomic, private, no API key, listed, resumable, clear errors."""
import json
import stat

import pytest

from nanocoder.session import Session, SessionError, latest, list_sessions, sessions_dir


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_round_trip_private_and_as_said(home):
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "configure ollama"},
                {"role": "tool", "tool_call_id": "1", "content": "x = ollama"}]
    s = Session(model="m", cwd="/w", messages=messages)
    path = s.save()
    assert path.parent == home / ".nanocoder" / "sessions"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    loaded = Session.load(s.id)
    assert loaded.messages == messages and loaded.model == "m" and loaded.id == s.id  # nothing rewritten
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


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
    for name, data in [("partial", {"model": "m"}), ("abc", {"model": "m", "cwd": "/", "messages": "abc"}),
                       ("numbers", {"model": "m", "cwd": "/", "messages": [1, 2]})]:
        (sessions_dir() / f"{name}.json").write_text(json.dumps(data))
        with pytest.raises(SessionError, match="not a nanocoder session"):
            Session.load(name)
    (sessions_dir() / "dangling.json").symlink_to(sessions_dir() / "gone.json")
    good = Session(model="m", cwd="/here")
    good.save()
    assert [r["id"] for r in list_sessions("/here")] == [good.id]  # the broken ones are skipped, no crash
    assert latest("/here").id == good.id


def test_two_processes_on_one_session_never_lose_a_turn(home):
    first = Session(model="m", cwd="/w", messages=[{"role": "user", "content": "one"}])
    first.save()
    second = Session.load(first.id)  # another nanocoder continues the same session
    second.messages = [*first.messages, {"role": "user", "content": "two (second process)"}]
    second.save()
    first.messages = [*first.messages, {"role": "user", "content": "two (first process)"}]
    first.save()  # the file changed under it: it forks instead of overwriting the other's turn
    assert first.forked_from == second.id and first.id != second.id
    assert Session.load(second.id).messages[-1]["content"] == "two (second process)"
    assert Session.load(first.id).messages[-1]["content"] == "two (first process)"
