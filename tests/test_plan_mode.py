"""Plan mode: only reading runs, writes are refused (never asked), commands run read-only, the model is told
in the turn, and the REPL offers to carry the plan out (/plan, Shift+Tab)."""
import json
import os
import subprocess

import pytest

from nanocoder import Agent
from nanocoder import events as ev
from nanocoder.permissions import Permissions
from nanocoder.prompt import PLAN_NOTE
from nanocoder.sandbox import Sandbox
from scripted import ScriptedServer
from test_cli import NANOCODER
from test_screen import PROMPT, Terminal, model  # noqa: F401 - model: the fixture the Terminal needs


def calls(*pairs):
    return {"tool_calls": [{"name": name, "arguments": arguments} for name, arguments in pairs]}


class Answer:
    """Records every event; answers each approval request with yes."""
    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event)
        if isinstance(event, ev.ApprovalRequested):
            event.answer(ev.Decision.once())

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def test_writes_are_refused_never_asked_and_reads_run(server, llm, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "app.py").write_text("x = 1\n")
    server.add(calls(("write_file", {"file_path": "new.py", "content": "y\n"}),
                     ("edit_file", {"file_path": "app.py", "old_string": "x = 1", "new_string": "x = 2"}),
                     ("write_file", {"file_path": str(tmp_path / "outside.txt"), "content": "y\n"}),
                     ("read_file", {"file_path": "app.py"}),
                     ("todo_write", {"todos": [{"content": "a", "status": "pending",
                                                "activeForm": "a-ing"}]})),
               "1. Change x to 2.")
    seen = Answer()
    agent = Agent(llm, cwd=work, approvals=True, on_event=seen, permissions=Permissions("plan"))
    assert agent.chat("make x two") == "1. Change x to 2."
    assert seen.of(ev.ApprovalRequested) == []  # refused outright: a plan never waits on a question
    results = {e.call_id: e for e in seen.of(ev.ToolFinished)}
    refused = [e for e in results.values() if e.is_error]
    assert [e.name for e in refused] == ["write_file", "edit_file", "write_file"]
    assert all("plan mode" in e.result and not e.ran for e in refused)
    assert sorted(e.name for e in results.values() if not e.is_error) == ["read_file", "todo_write"]
    assert not (work / "new.py").exists() and (work / "app.py").read_text() == "x = 1\n"
    assert not (tmp_path / "outside.txt").exists()


def test_the_model_is_told_in_the_turn_and_the_system_prompt_stays(server, llm, tmp_path):
    server.add("a plan", "done")
    agent = Agent(llm, cwd=tmp_path, permissions=Permissions("plan"))
    agent.chat("plan it")
    agent.permissions.mode = "edits"
    agent.chat("do it")
    first, second = (r["messages"] for r in server.requests)
    assert first[-1]["content"] == f"plan it\n\n{PLAN_NOTE}" and second[-1]["content"] == "do it"
    assert first[0] == second[0]  # one system prompt for both modes: the cached prefix holds


@pytest.mark.skipif(bool(Sandbox().support()), reason="no kernel sandbox on this platform")
def test_commands_run_in_the_read_only_sandbox(server, llm, tmp_path):
    server.add(calls(("bash", {"command": "echo hi > made.txt"})), "done")
    seen = Answer()
    agent = Agent(llm, cwd=tmp_path, approvals=True, on_event=seen, permissions=Permissions("plan"))
    agent.workspace.sandbox_policy = "off"  # even with the sandbox switched off, plan mode writes nothing
    agent.chat("try")
    [result] = seen.of(ev.ToolFinished)
    assert not (tmp_path / "made.txt").exists()
    assert "read-only" in result.result and result.ran


def test_p_with_permission_mode_plan(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_"))}
    env.update(HOME=str(home), NO_COLOR="1", NO_PROXY="127.0.0.1")
    with ScriptedServer() as server:
        server.add(calls(("write_file", {"file_path": "new.py", "content": "y\n"})), "1. Write new.py.")
        done = subprocess.run([str(NANOCODER), "--base-url", server.url, "--api-key", "k", "-m", "scripted",
                               "--permission-mode", "plan", "-p", "add new.py"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and done.stdout == "1. Write new.py.\n", done.stderr
    assert "needs approval" not in done.stderr and not (tmp_path / "new.py").exists()
    assert "plan mode" in server.requests[1]["messages"][-1]["content"]


def test_the_repl_plans_then_carries_the_plan_out_in_edits_mode(tmp_path, model):  # noqa: F811
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    write = calls(("write_file", {"file_path": "hello.txt", "content": "hi\n"}))
    t = Terminal(model("1. Add hello.txt.", write, "Done as planned."), home, work)
    t.expect(PROMPT)
    t.turn("/plan", "permissions: plan")
    t.child.sendline("add a greeting")
    t.expect("Carry out this plan?")
    t.child.sendline("y")
    t.expect("Done as planned.")
    t.expect(PROMPT)
    assert (work / "hello.txt").read_text() == "hi\n"  # edits mode: written without a question
    [path] = (home / ".nanocoder" / "sessions").glob("*.json")
    said = [m["content"] for m in json.loads(path.read_text())["messages"] if m["role"] == "user"]
    assert said[0].startswith("add a greeting") and PLAN_NOTE in said[0]
    assert said[1] == "Carry out this plan:\n\n1. Add hello.txt."
    t.turn("/mode", "permissions: edits")


def test_shift_tab_cycles_the_modes_and_n_keeps_planning(tmp_path, model):  # noqa: F811
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    t = Terminal(model("1. Nothing to do."), home, work)
    t.expect(PROMPT)
    # (the status line shows the mode too, but prompt_toolkit draws it only where the terminal answers
    # cursor-position requests, which nothing does here: /mode reads it)
    for mode in ("edits", "plan", "ask", "edits", "plan"):
        t.child.send("\x1b[Z")  # Shift+Tab
        t.turn("/mode", f"permissions: {mode}")
    t.child.sendline("think")
    t.expect("Carry out this plan?")
    t.child.sendline("n")
    t.expect(PROMPT)
    t.turn("/mode", "permissions: plan")
