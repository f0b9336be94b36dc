"""todo_write: validated, emitted as an event (stream-json), drawn as a checklist, saved with the session and
put back into the context after compaction."""
import json
import os
import subprocess

import pytest

from nanocoder import Agent
from nanocoder import events as ev
from test_cli import NANOCODER
from test_screen import PROMPT, Terminal, model  # noqa: F401 - model: the fixture the Terminal needs

TODOS = [{"content": "Read the code", "status": "completed", "activeForm": "Reading the code"},
         {"content": "Fix the bug", "status": "in_progress", "activeForm": "Fixing the bug"},
         {"content": "Run the tests", "status": "pending", "activeForm": "Running the tests"}]


def todo_call(todos):
    return {"tool_calls": [{"name": "todo_write", "arguments": {"todos": todos}}]}


@pytest.fixture
def env(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_"))}
    return {**clean, "HOME": str(home), "NO_COLOR": "1", "NO_PROXY": "127.0.0.1"}


def nanocoder(server, env, cwd, *args):
    return subprocess.run([str(NANOCODER), "--base-url", server.url, "--api-key", "k", "-m", "scripted",
                           *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("bad", [
    [{"content": "x", "status": "done", "activeForm": "x-ing"}],  # not a status
    [{"content": "x", "status": "pending"}],  # activeForm missing
    [{"content": "", "status": "pending", "activeForm": "x-ing"}],  # empty
    [{"content": "x", "status": "pending", "activeForm": "x-ing", "id": 1}],  # a key of another shape
    ["just a string"],
    [{"content": "x", "status": "pending", "activeForm": "x"}] * 51,  # too long a list
])
def test_a_bad_list_is_an_error_result_and_changes_nothing(server, llm, tmp_path, bad):
    server.add(todo_call(TODOS), todo_call(bad), "done")
    seen = []
    agent = Agent(llm, cwd=tmp_path, on_event=seen.append)
    agent.chat("plan it")
    [good, refused] = [e for e in seen if isinstance(e, ev.ToolFinished)]
    assert not good.is_error and refused.is_error and refused.result.startswith("Error:")
    assert [e.todos for e in seen if isinstance(e, ev.Todos)] == [TODOS]  # one event: the good list's
    assert agent.workspace.todos == TODOS


def test_the_list_reaches_stream_json_and_the_session(server, env, tmp_path):
    server.add(todo_call(TODOS), "Working on it.")
    done = nanocoder(server, env, tmp_path, "-p", "fix it", "--output-format", "stream-json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {"type": "system", "subtype": "todos", "todos": TODOS} in lines
    [saved] = (tmp_path / "home" / ".nanocoder" / "sessions").glob("*.json")
    assert json.loads(saved.read_text())["todos"] == TODOS


def test_a_resumed_session_keeps_its_list_through_a_compaction(server, env, tmp_path):
    server.add(todo_call(TODOS), "Working on it.")
    first = nanocoder(server, env, tmp_path, "-p", "fix it")
    assert first.returncode == 0, first.stderr
    [saved] = (tmp_path / "home" / ".nanocoder" / "sessions").glob("*.json")
    server.add("SUMMARY OF THE WORK", "Going on.")  # the compaction's summary, then the answer
    env = {**env, "NANOCODER_MAX_CONTEXT": "4000"}  # a long prompt then needs a compaction
    second = nanocoder(server, env, tmp_path, "-r", saved.stem, "-p", "go on " + "word " * 2000)
    assert second.returncode == 0, second.stderr
    sent = json.dumps(server.requests[-1]["messages"])
    assert "SUMMARY OF THE WORK" in sent and "[Your todo list, as you last wrote it]" in sent
    assert "- [in_progress] Fix the bug" in sent and "- [pending] Run the tests" in sent


def test_the_list_is_drawn_as_a_checklist(tmp_path, model):  # noqa: F811
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    t = Terminal(model(todo_call(TODOS), "All planned."), home, work)
    t.expect(PROMPT)
    t.turn("fix it", "All planned.")
    screen = t.lines()
    # the current one as it is being done
    for line in ("☒ Read the code", "☐ Fixing the bug", "☐ Run the tests"):
        assert any(row.strip() == line for row in screen), screen
