"""Issue 19: typed values at the tool and approval seams. A tool returns a ToolResult (or a str); an approval
is a request event answered with a Decision; cancel() ends every pending request; every result is in the
history before its events go out."""
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import assert_valid_history
from nanocoder import Agent
from nanocoder import events as ev
from nanocoder.tools.base import Tool, ToolResult
from test_repl import repl  # noqa: F401 (a fixture: nanocoder's REPL in a pty)

PROMPT = "›"
PACKAGE = Path(__file__).resolve().parent.parent / "nanocoder"


def write(name):
    return {"tool_calls": [{"name": "write_file", "arguments": {"file_path": name, "content": "hi"}}]}


# --- Decision: "n always" is a no, with a reason, and nothing is remembered ---------------------------------



def test_n_always_at_the_prompt_declines_and_remembers_nothing(repl, server):
    """The answer used to travel as a string: the reason "always" read as the word "always", so the call ran
    and write_file was allowed for the rest of the session."""
    server.add(write("out.txt"), "You declined.", write("more.txt"), "Asked again.")
    repl.sendline("write it")
    repl.expect("lways:")
    repl.sendline("n always")
    repl.expect("You declined.")
    repl.expect_exact(PROMPT)
    assert not (repl.work / "out.txt").exists()
    result = server.requests[1]["messages"][-1]
    assert result["role"] == "tool"
    assert result["content"].endswith("declined to run this call, saying: always")
    repl.sendline("and now?")
    repl.expect("Allow")  # nothing was remembered: it asks again
    repl.expect("lways:")
    repl.sendline("n")
    repl.expect("Asked again.")
    repl.expect_exact(PROMPT)
    assert not (repl.work / "more.txt").exists()


def test_answers_typed_at_the_question_become_decisions():
    from nanocoder.view import decision
    assert decision("y", "write_file") == ev.Decision.once()
    assert decision("always", "bash:pytest") == ev.Decision.always("bash:pytest")
    assert decision("n always", "write_file") == ev.Decision.deny("always")
    assert decision("no  use git mv ", "x") == ev.Decision.deny("use git mv")
    assert decision("3 not now", "x") == ev.Decision.deny("not now") and decision("2", "x").scope == "x"
    assert decision("", "x") is None and decision("yep", "x") is None  # asked again, never a silent no


# --- approval as a request: cancel() ends it, and the view's lock is free meanwhile ------------------------

class Unanswered:
    """An on_event consumer that keeps approval requests and answers none (a user gone for coffee)."""

    def __init__(self):
        self.requests, self.asked = [], threading.Event()

    def __call__(self, event):
        if isinstance(event, ev.ApprovalRequested):
            self.requests.append(event)
            self.asked.set()


def test_cancel_ends_a_sub_agents_pending_request_and_its_write_never_runs(server, llm, tmp_path):
    """A sub-agent waiting for approval was not stopped by cancel(): the turn waited for the answer."""
    server.add({"tool_calls": [{"name": "agent", "arguments": {"task": "write"}}]}, write("late.txt"),
               "sub done", "parent done")
    front = Unanswered()
    parent = Agent(llm=llm, cwd=tmp_path, on_event=front, approvals=True)
    ended = {}

    def run():
        try:
            parent.chat("delegate")
        except BaseException as e:  # noqa: BLE001 - recorded for the assertion below
            ended["error"] = e
    turn = threading.Thread(target=run, daemon=True)
    turn.start()
    assert front.asked.wait(30)
    [request] = front.requests
    assert request.name == "write_file" and request.depth == 1 \
        and request.scope == f"write_file on files directly in {tmp_path.resolve()}"
    parent.cancel()
    turn.join(30)  # a guard against a hang, not a time bound: the turn ends without any answer
    assert not turn.is_alive() and type(ended["error"]).__name__ == "Cancelled"
    assert request.decision.result(0) == ev.Decision.deny("stopped by the user")
    request.answer(ev.Decision.once())  # a late yes changes nothing
    assert not (tmp_path / "late.txt").exists()
    assert_valid_history(parent.messages)


def test_the_view_draws_other_events_while_a_question_waits_for_the_user(monkeypatch):
    """The view held its lock through console.input(): a call finishing meanwhile could not be drawn."""
    from io import StringIO
    from rich.console import Console
    from nanocoder.view import View
    console = Console(file=StringIO(), force_terminal=False, width=100)
    typed, asking = threading.Event(), threading.Event()

    def user(prompt=""):
        asking.set()
        typed.wait(30)
        return "y"
    monkeypatch.setattr(console, "input", user)
    view = View(console, interactive=True)
    request = ev.ApprovalRequested("r1", "c1", "write_file", {"file_path": "a"})
    question = threading.Thread(target=view, args=(request,), daemon=True)
    question.start()
    assert asking.wait(30)
    drawn = threading.Thread(target=view, args=(ev.Notice("a call finished meanwhile"),), daemon=True)
    drawn.start()
    drawn.join(30)
    alive = drawn.is_alive()
    typed.set()
    question.join(30)
    assert not alive and "a call finished meanwhile" in console.file.getvalue()
    assert request.decision.result(0) == ev.Decision.once()


def test_a_non_interactive_view_denies_and_says_why(server, llm, tmp_path):
    from io import StringIO
    from rich.console import Console
    from nanocoder.view import View
    console = Console(file=StringIO(), width=200)
    server.add(write("x.txt"), "ok")
    agent = Agent(llm=llm, cwd=tmp_path, on_event=View(console, interactive=False), approvals=True)
    agent.chat("write")
    assert not (tmp_path / "x.txt").exists()
    assert "not run: write_file needs approval" in console.file.getvalue()
    assert server.requests[1]["messages"][-1]["content"].endswith("Ask them how to proceed.")


# --- ToolResult: custom tools, structure instead of text ---------------------------------------------------

class Legacy(Tool):
    """A user's tool from before ToolResult: execute returns a str."""
    name, description = "legacy", "says hi"

    def execute(self) -> str:
        return "hi from a str"


class Probe(Tool):
    name, description = "probe", "fails in a structured way"

    def execute(self) -> ToolResult:
        return ToolResult(["it broke"], is_error=True, exit_code=-9, signal="SIGKILL")


def test_custom_tools_may_return_a_str_or_a_tool_result(server, llm, tmp_path):
    server.add({"tool_calls": [{"name": "legacy", "arguments": {}}, {"name": "probe", "arguments": {}}]},
               "ok")
    events = []
    Agent(llm=llm, cwd=tmp_path, tools=[Legacy(), Probe()], on_event=events.append).chat("go")
    answers = [m["content"] for m in server.requests[1]["messages"] if m["role"] == "tool"]
    assert answers == ["hi from a str", "it broke\n[exit code: -9 (SIGKILL)]"]
    finished = {e.name: e for e in events if isinstance(e, ev.ToolFinished)}
    assert not finished["legacy"].is_error and finished["probe"].is_error and finished["probe"].ran


def test_no_module_decides_by_reading_result_text():
    """Errors and denials are fields of a ToolResult now: no "Error" prefix, no DENIED words are matched."""
    sniffing = re.compile(r"""startswith\(\s*["']Error|["']Error[^"']*["']\s+in\b|\bDENIED\b|"""
                          r"""["'](Permission denied|Read-only file system|Operation not permitted)["']|"""
                          r"""\bclass Changed\b""")
    found = [f"{path.relative_to(PACKAGE)}:{n}" for path in PACKAGE.rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1) if sniffing.search(line)]
    assert found == []


# --- Ctrl+C while a slow consumer of a finished call runs ---------------------------------------------------

def test_ctrl_c_during_a_slow_consumer_leaves_every_call_answered(server, llm, tmp_path):
    """Every result is in the history before the events that report them go out; a SIGINT (twice) in a slow
    consumer of ToolFinished (a saver on a slow disk, a front end) leaves a history a provider accepts."""
    marks = tmp_path / "marks"
    marks.mkdir()

    def slow(event):
        if isinstance(event, ev.ToolFinished):
            (marks / event.call_id).touch()
            time.sleep(60)
    calls = [{"name": "bash", "arguments": {"command": f"echo {n}"}} for n in range(3)]
    server.add({"tool_calls": calls}, "done")
    agent = Agent(llm=llm, cwd=tmp_path, on_event=slow)

    over = threading.Event()

    def interrupt():  # on each hook's start (an event: its file), a Ctrl+C to the main thread
        for n in range(2):
            while len(list(marks.iterdir())) <= n:
                if over.wait(0.02):
                    return
            os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=interrupt, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            agent.chat("go")
    finally:
        over.set()
    assert_valid_history(agent.messages)
    answers = [m for m in agent.messages if m["role"] == "tool"]
    # the call whose report met the first Ctrl+C had its result recorded first: whichever finished first
    assert len(answers) == 3 and any(a["content"].endswith("\n[exit code: 0]") for a in answers)
