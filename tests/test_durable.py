"""No lost work and no crash on hostile local state: sessions under a lock, each finished call recorded as it
finishes, calls on one file in the model's order, settings and session files that are one clear line, and
tool-call arguments assembled in linear time (the figure is in benchmarks/run.py)."""
import json
import multiprocessing
import os
import resource
import subprocess
import time
from pathlib import Path

import pytest

from history_rules import problems
from nanocoder import Agent
from nanocoder.history import STOPPED
from nanocoder.llm import _Assembler
from nanocoder.permissions import Permissions
from nanocoder.session import Session, sessions_dir
from conftest import assert_valid_history
from scripted import ScriptedServer
from test_agent import Rendezvous
from test_cli import KEY, NANOCODER, env, one_line_error, run, workspace  # noqa: F401 (fixtures)


def _assemble(pieces: list) -> str:
    parts = _Assembler()
    parts.add({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]}}]})
    for piece in pieces:
        parts.add({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}}]})
    parts.add({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]})
    return parts.reply().tool_calls[0].arguments


def test_tool_arguments_are_assembled_as_sent_even_from_many_empty_object_pieces():
    assert _assemble(['{"a": ', "{}", "}"]) == '{"a": {}}'
    assert _assemble(["["] + ["{}"] * 5000) == "[" + "{}" * 5000  # kept as sent (then refused as no object)
    assert _assemble(['{"a": [{}, ', '{}]}', '{"a": [{}, {}]}']) == '{"a": [{}, {}]}'  # a re-sent whole
    whole = '{"k": "' + "x" * 100 + '"}'
    assert _assemble(['{"k": "', "x" * 100, '"}', whole]) == whole


# --- item 4: two processes saving one session at the same moment never lose a turn -------------------------

def _writer(home, ids, who, barrier):
    os.environ["HOME"] = home
    for n, session_id in enumerate(ids):  # a fresh shared session each time: after a fork they part ways
        session = Session.load(session_id)
        session.messages = [*session.messages, {"role": "user", "content": f"{who} {n}"}]
        barrier.wait()  # both save at the same moment
        session.save()


def test_two_processes_saving_one_session_at_once_never_lose_a_turn(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    shared = [Session(model="m", cwd="/w", messages=[{"role": "user", "content": "go"}]) for _ in range(100)]
    for session in shared:
        session.save()
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(2, timeout=30)
    writers = [fork.Process(target=_writer, args=(str(tmp_path), [s.id for s in shared], who, barrier))
               for who in "ab"]
    for p in writers:
        p.start()
    for p in writers:
        p.join(120)
        assert p.exitcode == 0
    kept = {m["content"] for path in sessions_dir().glob("*.json") for m in Session.load(path.stem).messages}
    lost = [f"{who} {n}" for who in "ab" for n in range(len(shared)) if f"{who} {n}" not in kept]
    assert lost == []


# --- item 10: settings and session files that cannot be used are one clear line, never a hang ---------------

def _run(args, env, cwd, timeout=30):
    """The installed command, its address space capped at 2 GB: reading /dev/zero fails, not the machine."""
    cap = lambda: resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    return subprocess.run([str(NANOCODER), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, preexec_fn=cap)


@pytest.mark.parametrize("name, value, words", [
    ("NANOCODER_TIMEOUT", "1e10", ["NANOCODER_TIMEOUT", "at most"]),
    ("OPENAI_BASE_URL", "http://[::1", ["OPENAI_BASE_URL", "not a valid URL"]),
    ("OPENAI_BASE_URL", "localhost:8000", ["OPENAI_BASE_URL", "http(s) URL"]),
    ("NANOCODER_MODEL", os.fsdecode(b"gpt-\xff"), ["NANOCODER_MODEL", "gpt-\\xff", "UTF-8"]),
    ("OPENAI_API_KEY", "sk-\u00e9", ["OPENAI_API_KEY", "ASCII"]),
])
def test_a_setting_that_cannot_be_used_is_one_line(env, workspace, name, value, words):
    with ScriptedServer(["never asked"]) as server:
        settings = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.url, name: value}
        result = _run(["-p", "hi"], {**env, **settings}, workspace)
        assert server.requests == []
    one_line_error(result, *words)


def test_hooks_in_settings_are_refused_in_one_line_before_anything_runs(env, workspace):
    """Hooks were removed; a PreToolUse hook may have been someone's guard, so nothing runs without it."""
    settings = Path(env["HOME"]) / ".nanocoder" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"hooks": {"PreToolUse": []}}))
    bash = {"name": "bash", "arguments": {"command": "touch ran"}}
    with ScriptedServer([{"tool_calls": [bash]}, "done"]) as server:
        result = _run(["-p", "hi", "-y", "--base-url", server.url, "--api-key", KEY], env, workspace)
    one_line_error(result, "settings.json", "hooks are no longer supported")
    assert not (workspace / "ran").exists() and server.requests == []


def _sessions(env) -> Path:
    folder = Path(env["HOME"]) / ".nanocoder" / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_listing_and_continuing_skip_fifos_devices_and_huge_files(env, workspace):
    folder = _sessions(env)
    os.mkfifo(folder / "fifo.json")
    (folder / "zero.json").symlink_to("/dev/zero")
    with open(folder / "huge.json", "wb") as f:  # sparse, 1 GB: larger than the cap, costs no disk
        f.truncate(1 << 30)
    with ScriptedServer(["first", "continued"]) as server:
        args = ["--base-url", server.url, "--api-key", KEY]
        assert _run(["-p", "the word is heron", *args], env, workspace).returncode == 0
        listed = _run(["--sessions"], env, workspace)
        assert listed.returncode == 0 and listed.stderr == ""
        [line] = listed.stdout.splitlines()  # the good session alone
        assert "heron" in line
        result = _run(["-c", "-p", "what was the word?", *args], env, workspace)
    assert result.returncode == 0 and result.stdout == "continued\n", result.stderr
    assert [m["content"] for m in server.requests[1]["messages"][1:]] == [
        "the word is heron", "first", "what was the word?"]


@pytest.mark.parametrize("name, text, words", [
    ("fifo", None, ["not a regular file"]),
    ("zero", None, ["unreadable"]),
    ("deep", '{"model": "m", "cwd": "/", "messages": ' + "[" * 100_000 + "]" * 100_000 + "}", ["unreadable"]),
    ("calls", json.dumps({"model": "m", "cwd": "/", "messages": [
        {"role": "assistant", "content": None, "tool_calls": "x"}]}), ["not a nanocoder session"]),
    ("function", json.dumps({"model": "m", "cwd": "/", "messages": [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "a", "function": 5}]}]}),
     ["not a nanocoder session"]),
])
def test_resuming_a_session_that_is_no_session_is_one_line(env, workspace, name, text, words):
    folder = _sessions(env)
    if name == "fifo":
        os.mkfifo(folder / "fifo.json")
    elif name == "zero":
        (folder / "zero.json").symlink_to("/dev/zero")
    else:
        (folder / f"{name}.json").write_text(text)
    with ScriptedServer(["never asked"]) as server:
        result = _run(["-r", name, "-p", "go on", "--base-url", server.url, "--api-key", KEY], env, workspace)
        assert server.requests == []
    one_line_error(result, f"session {name!r}", *words)
    listed = _run(["--sessions"], env, workspace)
    assert listed.returncode == 0 and listed.stdout == "no saved sessions yet\n"


# --- item 9: calls of one batch on one file run in the order the model gave ------------------------------

def test_calls_on_one_file_run_in_the_models_order_and_others_still_in_parallel(server, llm, tmp_path):
    rounds = 50
    for n in range(rounds):  # a file of its own each round: the same calls every round would end the turn
        name = f"f{n}.txt"
        server.add({"tool_calls": [
            {"name": "write_file", "arguments": {"file_path": name, "content": "A\n"}},
            {"name": "edit_file", "arguments": {"file_path": name, "old_string": "A", "new_string": "B"}},
            {"name": "meet", "arguments": {"who": "x"}},  # no path: runs beside the chain, not after it
            {"name": "edit_file", "arguments": {"file_path": name, "old_string": "B", "new_string": "C"}},
            {"name": "meet", "arguments": {"who": "y"}}]})
    server.add("done")
    agent = Agent(llm=llm, tools=[Rendezvous(2)], cwd=tmp_path, permissions=Permissions("yes"))
    assert agent.chat("go") == "done"
    ended = [(tmp_path / f"f{n}.txt").read_text() for n in range(rounds)]
    assert ended == ["C\n"] * rounds
    assert_valid_history(agent.messages)


# --- item 5: each finished call is recorded as it finishes, so a kill mid-round loses nothing done ---------

def _poll(condition, what, limit=60):
    """Wait for condition() (a bound on a failure, not a timing claim)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def test_a_kill_mid_round_leaves_the_finished_edits_in_the_session_and_the_model_is_told(env, workspace):
    names = ["a.txt", "b.txt", "c.txt"]
    for name in names:
        (workspace / name).write_text("old\n")
    edits = [{"name": "edit_file", "arguments": {"file_path": n, "old_string": "old", "new_string": "new"}}
             for n in names]
    sleep = {"name": "bash", "arguments": {"command": "sleep 20"}}
    with ScriptedServer([{"tool_calls": [*edits, sleep]}, "I see what was done."]) as server:
        args = ["--base-url", server.url, "--api-key", KEY]
        child = subprocess.Popen([str(NANOCODER), "-p", "edit them, then wait", "-y", *args], env=env,
                                 cwd=workspace, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            _poll(lambda: all((workspace / n).read_text() == "new\n" for n in names), "the edits on disk")

            def recorded():  # the session says so while the command still runs
                saved = sorted(_sessions(env).glob("*.json"))
                return saved and saved[0].read_text().count("+new") >= 3
            _poll(recorded, "the three edits in the session")
            assert child.poll() is None  # the bash call is still running: this is mid-round
        finally:
            child.kill()
            child.wait()
        [saved] = _sessions(env).glob("*.json")
        assert problems(json.loads(saved.read_text())["messages"]) == []  # valid as it stands, unrepaired
        result = run(["-c", "-p", "what happened?", *args], env, workspace)
    assert result.returncode == 0 and result.stdout == "I see what was done.\n", result.stderr
    sent = server.requests[1]["messages"]
    assert problems(sent) == []
    answers = {m["tool_call_id"]: m["content"] for m in sent if m["role"] == "tool"}
    calls = [c for m in sent if m["role"] == "assistant" for c in m.get("tool_calls") or ()]
    assert [c["function"]["name"] for c in calls] == ["edit_file"] * 3 + ["bash"]
    for call in calls[:3]:
        assert "-old\n+new" in answers[call["id"]], answers[call["id"]]
    assert answers[calls[3]["id"]] == STOPPED
