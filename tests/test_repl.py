"""The REPL in a real pseudo-terminal (pexpect): streaming, commands, approvals, Ctrl+C, quit."""
import os
import sys
from pathlib import Path

import pexpect
import pytest

from nanocoder.scripted import ScriptedServer
from conftest import assert_valid_history

NANOCODER = Path(sys.executable).parent / "nanocoder"
PROMPT = "›"  # prompt_toolkit draws the space after it as a cursor move


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def repl(tmp_path, server):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_"))}
    # PROMPT_TOOLKIT_NO_CPR: nothing under pexpect answers prompt_toolkit's cursor-position query.
    env.update(HOME=str(home), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(str(NANOCODER), ["--base-url", server.url, "--api-key", "test", "-m", "scripted"],
                          env=env, cwd=str(work), encoding="utf-8", timeout=15, dimensions=(40, 120))
    child.expect_exact(PROMPT)
    child.work = work
    yield child
    child.close(force=True)


def say(child, line):
    child.sendline(line)


def test_prompt_streams_answer_tokens_and_quit(repl, server):
    server.add({"content": "The **answer** is forty-two.", "delay": 0.02})
    say(repl, "what is the answer?")
    repl.expect("forty-two")
    repl.expect_exact(PROMPT)
    say(repl, "/tokens")
    repl.expect(r"prompt tokens: ([\d,]+)")
    assert int(repl.match.group(1).replace(",", "")) > 0
    repl.expect_exact(PROMPT)
    say(repl, "quit")
    repl.expect(r"nanocoder -r (\S+)")
    repl.expect(pexpect.EOF)
    repl.close()
    assert repl.exitstatus == 0


def test_approval_no_then_always(repl, server):
    write = {"tool_calls": [{"name": "write_file", "arguments": {"file_path": "out.txt", "content": "hi"}}]}
    server.add(write, "You declined.", write, "Written.")
    say(repl, "write it")
    repl.expect("Allow")
    repl.expect("lways: ")
    repl.sendline("n")
    repl.expect("You declined.")
    repl.expect_exact(PROMPT)
    assert not (repl.work / "out.txt").exists()
    assert "declined" in server.requests[1]["messages"][-1]["content"]
    say(repl, "write it now")
    repl.expect("lways: ")
    repl.sendline("a")
    repl.expect("Written.")
    assert (repl.work / "out.txt").read_text() == "hi"


def test_ctrl_c_stops_a_slow_turn_and_the_session_goes_on(repl, server):
    server.add({"content": "slow " * 200, "delay": 0.2}, "Back again.")
    say(repl, "talk to me")
    repl.expect("slow slow")  # the answer is streaming (the typed line does not contain this)
    repl.sendcontrol("c")
    repl.expect("interrupted")
    repl.expect_exact(PROMPT)
    say(repl, "are you there?")
    repl.expect("Back again.")
    assert_valid_history(server.requests[-1]["messages"])
    assert server.requests[-1]["messages"][-1]["content"] == "are you there?"
    repl.expect_exact(PROMPT)
    repl.sendeof()
    repl.expect(pexpect.EOF)
    repl.close()
    assert repl.exitstatus == 0


def test_commands(repl, server):
    say(repl, "/help")
    repl.expect("/compact")
    repl.expect("/sessions")
    say(repl, "/model other-model")
    repl.expect("model: other-model")
    server.add("one", "two")
    say(repl, "first")
    repl.expect("one")
    assert server.requests[-1]["model"] == "other-model"
    say(repl, "/reset")
    repl.expect("new conversation")
    say(repl, "second")
    repl.expect("two")
    assert [m["role"] for m in server.requests[-1]["messages"]] == ["system", "user"]
    say(repl, "/save")
    repl.expect(r"saved to \S+/([\w-]+)\.json")
    session_id = repl.match.group(1)
    say(repl, "/sessions")
    repl.expect(session_id[:15])
    say(repl, "/foo")
    repl.expect("unknown command /foo")


def test_bracketed_paste_is_one_message(repl, server):
    server.add("got both")
    repl.send("\x1b[200~line one\nline two\x1b[201~")
    repl.send("\r")
    repl.expect("got both")
    assert server.requests[-1]["messages"][-1]["content"] == "line one\nline two"
