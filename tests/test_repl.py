"""The REPL in a real pseudo-terminal (pexpect): streaming, commands, approvals, Ctrl+C, quit."""
import os
import sys
import time
from pathlib import Path

import pexpect
import pytest

from conftest import assert_valid_history
from scripted import ScriptedServer

NANOCODER = Path(sys.executable).parent / "nanocoder"  # the command of the virtualenv running the tests
PROMPT = "›"  # prompt_toolkit draws the space after it as a cursor move
ID = r"([\w-]+)"  # a session id; \S+ would swallow the colour codes after it


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def repl(tmp_path, server):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "NANOCODER_")) and not k.lower().endswith("_proxy")}
    # PROMPT_TOOLKIT_NO_CPR: nothing under pexpect answers prompt_toolkit's cursor-position query.
    env.update(HOME=str(home), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(str(NANOCODER), ["--base-url", server.url, "--api-key", "test", "-m", "scripted"],
                          env=env, cwd=str(work), encoding="utf-8", timeout=15, dimensions=(40, 120))
    child.expect_exact(PROMPT)
    child.work, child.home = work, home
    yield child
    child.close(force=True)


def turn(child, line, *expected):
    """Type a line, wait for each expected pattern in order, then for the next prompt.
    Returns the last pattern's match."""
    child.sendline(line)
    match = None
    for pattern in expected:
        child.expect(pattern)
        match = child.match
    child.expect_exact(PROMPT)
    return match


def exits_cleanly(child):
    child.expect(pexpect.EOF)
    output = child.before
    child.close()
    assert child.exitstatus == 0 and child.signalstatus is None
    assert "Traceback" not in output
    return output


def saved(child):
    return sorted(p.stem for p in (child.home / ".nanocoder" / "sessions").glob("*.json"))


def test_prompt_streams_answer_tokens_and_quit(repl, server):
    server.add({"content": "The **answer** is forty-two.", "delay": 0.02})
    turn(repl, "what is the answer?", "forty-two")
    assert server.requests[-1]["messages"][-1] == {"role": "user", "content": "what is the answer?"}
    tokens = turn(repl, "/tokens", r"input tokens: ([\d,]+)")
    assert int(tokens.group(1).replace(",", "")) > 0
    repl.sendline("quit")
    repl.expect(rf"nanocoder -r {ID}")
    session_id = repl.match.group(1)
    exits_cleanly(repl)
    assert saved(repl) == [session_id]  # the hint names a session that really is on disk


def test_quit_before_any_turn_promises_no_session(repl):
    turn(repl, "/help", "/compact", "/sessions")
    repl.sendline("quit")
    output = exits_cleanly(repl)
    assert "nanocoder -r" not in output and saved(repl) == []


def test_approval_no_then_always(repl, server):
    def write(name):
        return {"tool_calls": [{"name": "write_file", "arguments": {"file_path": name, "content": "hi"}}]}
    server.add(write("out.txt"), "You declined.", write("out.txt"), "Written.", write("more.txt"), "Again.")
    repl.sendline("write it")
    repl.expect("Allow")
    repl.expect("lways:")
    repl.sendline("n")
    repl.expect("You declined.")
    repl.expect_exact(PROMPT)
    assert not (repl.work / "out.txt").exists()
    result = server.requests[1]["messages"][-1]
    assert result["role"] == "tool" and "declined" in result["content"]
    repl.sendline("write it now")
    repl.expect("Allow")
    repl.expect("lways:")
    repl.sendline("a")
    repl.expect("Written.")
    repl.expect_exact(PROMPT)
    assert (repl.work / "out.txt").read_text() == "hi"
    turn(repl, "and another", "Again.")  # "always": write_file no longer asks
    assert "Allow" not in repl.before
    assert (repl.work / "more.txt").read_text() == "hi"


def test_ctrl_d_at_the_approval_question_declines(repl, server):
    server.add({"tool_calls": [{"name": "write_file", "arguments": {"file_path": "out.txt", "content": "hi"}}]},
               "Not written, then.")
    repl.sendline("write it")
    repl.expect("lways:")
    repl.sendeof()
    repl.expect("Not written, then.")  # the session goes on: no traceback, no lost turn
    repl.expect_exact(PROMPT)
    assert not (repl.work / "out.txt").exists()
    assert "declined" in server.requests[1]["messages"][-1]["content"]
    repl.sendline("quit")
    exits_cleanly(repl)
    assert len(saved(repl)) == 1


def test_ctrl_c_stops_a_slow_turn_and_the_session_goes_on(repl, server):
    # 1,500 characters in 8-character chunks 0.3 s apart: nearly a minute unless Ctrl+C stops it.
    server.add({"content": "tick " * 300, "delay": 0.3}, "Back again.")
    repl.sendline("talk to me")
    repl.expect("tick")  # the first chunk is on screen (the typed line does not contain it)
    repl.sendcontrol("c")
    repl.expect("interrupted")
    repl.expect_exact(PROMPT)  # within pexpect's 15 s, while the whole stream would take 90 s
    turn(repl, "are you there?", "Back again.")
    messages = server.requests[-1]["messages"]
    assert_valid_history(messages)
    assert "tick " * 300 not in str(messages)  # the stream was stopped, not waited out
    assert {"role": "user", "content": "[The user interrupted this turn.]"} in messages
    assert messages[-1] == {"role": "user", "content": "are you there?"}
    assert {"role": "user", "content": "talk to me"} in messages
    repl.sendeof()
    exits_cleanly(repl)


def test_commands(repl, server):
    turn(repl, "/help", "/compact", "/sessions")
    server.models.append("other-model")  # one the provider lists
    turn(repl, "/model other-model", "model: other-model")
    server.add("reply-one", "reply-two")
    turn(repl, "first", "reply-one")
    assert server.requests[-1]["model"] == "other-model"
    turn(repl, "/reset", "new conversation")
    turn(repl, "second", "reply-two")
    sent = server.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user"] and sent[1]["content"] == "second"
    sessions = saved(repl)  # each conversation saved after its round, with no command for it
    assert len(sessions) == 2
    repl.sendline("/sessions")
    listed = set()
    for _ in sessions:
        repl.expect("|".join(sessions))
        listed.add(repl.match.group(0))
    repl.expect_exact(PROMPT)
    assert listed == set(sessions)
    turn(repl, "/foo", "unknown command /foo")
    assert len(server.requests) == 2  # commands never reach the model


def test_bracketed_paste_is_one_message(repl, server):
    server.add("got both")
    repl.send("\x1b[200~line one\nline two\x1b[201~")
    repl.send("\r")
    repl.expect("got both")
    assert len(server.requests) == 1
    assert server.requests[0]["messages"][-1] == {"role": "user", "content": "line one\nline two"}


def test_ctrl_c_mid_turn_saves_and_twice_at_an_empty_prompt_quits(repl, server):
    server.add({"content": "tock " * 300, "delay": 0.3})
    repl.sendline("keep talking")
    repl.expect("tock")
    repl.sendcontrol("c")
    repl.expect("interrupted")
    repl.expect_exact(PROMPT)
    assert len(saved(repl)) == 1  # saved right after the interrupted turn, before quitting
    repl.send("half a line")
    repl.expect_exact("half a line")
    repl.sendcontrol("c")  # clears the typed line in place; does not count towards quitting
    server.add("cleared")
    turn(repl, "fresh line", "cleared")
    assert server.requests[-1]["messages"][-1]["content"] == "fresh line"
    repl.sendcontrol("c")
    repl.expect("Ctrl\\+C again to quit")
    repl.sendcontrol("c")
    output = exits_cleanly(repl)
    assert "resume with: nanocoder -r" in output


def test_the_edit_diff_is_asked_about_and_mode_edits_stops_asking(repl, server):
    (repl.work / "app.py").write_text("x = 1\n")
    edit = lambda old, new: {"tool_calls": [{"name": "edit_file", "arguments": {
        "file_path": "app.py", "old_string": old, "new_string": new}}]}
    server.add(edit("x = 1", "x = 2"), "Edited.", edit("x = 2", "x = 3"), "Edited again.")
    repl.sendline("bump x")
    repl.expect("Allow")
    repl.expect(r"\+x = 2")  # the diff is on screen before the answer
    repl.expect("lways:")
    repl.sendline("y")
    repl.expect("Edited.")
    repl.expect_exact(PROMPT)
    turn(repl, "/mode", "permissions: ask")
    turn(repl, "/mode edits", "permissions: edits")
    turn(repl, "bump again", "Edited again.")
    assert "Allow" not in repl.before
    assert (repl.work / "app.py").read_text() == "x = 3\n"
    turn(repl, "/mode sometimes", "unknown mode")


def test_history_and_sessions_are_private_and_kept_as_typed(tmp_path, server):
    import stat
    key = "sk-live-do-not-store-4711"
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_"))}
    env.update(HOME=str(home), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", NO_PROXY="127.0.0.1")
    server.add("Noted.")
    child = pexpect.spawn(str(NANOCODER), ["--base-url", server.url, "--api-key", key], env=env, cwd=str(work),
                          encoding="utf-8", timeout=15, dimensions=(40, 120))
    child.expect_exact(PROMPT)
    child.home = home
    turn(child, f"my key is {key}", "Noted.")
    child.sendline("quit")
    exits_cleanly(child)
    assert key in server.requests[0]["messages"][-1]["content"]  # the model did get the line
    folder = home / ".nanocoder"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.rglob("*"):
        if path.is_file():
            # 0600, or 0400 for the objects of /undo's store (git makes them read-only)
            assert stat.S_IMODE(path.stat().st_mode) in (0o600, 0o400), path
    assert f"my key is {key}" in (folder / "history").read_text()  # kept as typed, never rewritten


def test_ctrl_c_while_a_command_runs_kills_it_and_answers_the_call(repl, server):
    server.add({"tool_calls": [{"name": "bash", "arguments": {"command": "echo $$ > pid; sleep 60"}}]},
               "Carrying on.")
    repl.sendline("wait a minute")
    repl.expect("it writes to a file")  # why it asks
    repl.expect("lways:")
    repl.sendline("y")
    for _ in range(100):
        if (repl.work / "pid").exists() and (repl.work / "pid").read_text().strip():
            break
        time.sleep(0.05)
    repl.sendcontrol("c")
    repl.expect("interrupted")
    repl.expect_exact(PROMPT)
    pid = int((repl.work / "pid").read_text())
    time.sleep(0.5)
    assert not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    turn(repl, "go on", "Carrying on.")
    sent = server.requests[-1]["messages"]
    assert_valid_history(sent)
    assert "interrupted" in sent[-2]["content"] or "SIGTERM" in sent[-2]["content"]
