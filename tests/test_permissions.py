"""Permission modes, path rules and "always": what runs, what asks, what never runs."""
import os

import pytest

from nanocoder import Agent
from nanocoder.events import ApprovalRequested, Decision
from nanocoder.permissions import (EDIT, ELSEWHERE, FORBIDDEN, OUTSIDE, PROTECTED, READ, RUN, Permissions,
                                   path_kind)
from nanocoder.tools.base import Workspace
from nanocoder.tools.files import WriteFileTool

TABLE = {  # kind: (ask, edits, yes)
    READ: ("allow", "allow", "allow"), EDIT: ("ask", "allow", "allow"), RUN: ("ask", "ask", "allow"),
    OUTSIDE: ("ask", "ask", "allow"), PROTECTED: ("ask", "ask", "ask"), FORBIDDEN: ("deny", "deny", "deny")}


@pytest.mark.parametrize("kind", TABLE)
def test_the_mode_table(kind):
    for mode, expected in zip(("ask", "edits", "yes"), TABLE[kind]):
        assert Permissions(mode).check(kind, "k") == expected, (kind, mode)


def test_always_covers_its_key_but_never_a_protected_or_forbidden_call():
    p = Permissions("ask")
    p.always.add("write_file")
    assert p.check(EDIT, "write_file") == p.check(OUTSIDE, "write_file") == "allow"
    assert p.check(EDIT, "edit_file") == "ask"
    assert p.check(PROTECTED, "write_file") == "ask" and p.check(FORBIDDEN, "write_file") == "deny"
    with pytest.raises(ValueError, match="unknown permission mode"):
        Permissions("sometimes")


def test_paths_resolve_symlinks_and_know_protected_places(tmp_path):
    home, root, elsewhere = tmp_path / "home", tmp_path / "home" / "repo", tmp_path / "elsewhere"
    for folder in (root, elsewhere, home / ".ssh"):
        folder.mkdir(parents=True)
    (root / "link").symlink_to(elsewhere)
    kind = lambda p: path_kind(p.resolve(), root, home, writable=[elsewhere])[0]  # as if commands wrote there
    assert kind(root / "src" / "a.py") == EDIT
    assert kind(root / "link" / "a.py") == OUTSIDE  # a symlink out of the workspace is outside
    assert kind(root / ".." / "other.py") == ELSEWHERE  # where no command may write: asked under --yes too
    assert kind(root / ".git" / "config") == kind(root / ".git" / "hooks" / "pre-commit") == PROTECTED
    assert kind(root / ".git") == kind(root / "sub" / ".GIT" / "config") == kind(root / ".Git") == PROTECTED
    assert kind(home / ".ssh" / "authorized_keys") == kind(home / ".bashrc") == kind(home / ".zshrc") == PROTECTED
    assert kind(root / ".gitignore") == kind(root / ".bashrc") == EDIT  # only the home's start-up files


class Asked:
    """An on_event consumer that records each approval request and answers from a script: True (once),
    "always" or False."""
    def __init__(self, *answers):
        self.answers, self.asked = list(answers), []

    def __call__(self, event):
        if isinstance(event, ApprovalRequested):
            self.asked.append((event.name, event.why, event.preview))
            answer = self.answers.pop(0)
            event.answer(Decision.always(event.scope) if answer == "always"
                         else Decision.once() if answer else Decision.deny())

    def __getattr__(self, name):
        return lambda *a, **k: None


def write(path, text="new\n"):
    return {"name": "write_file", "arguments": {"file_path": str(path), "content": text}}


def test_edits_mode_writes_inside_without_asking_and_asks_outside(server, llm, tmp_path):
    work, outside = tmp_path / "work", tmp_path / "outside.txt"
    work.mkdir()
    asked = Asked(False)
    agent = Agent(llm=llm, cwd=work, on_event=asked, approvals=True, permissions=Permissions("edits"))
    server.add({"tool_calls": [write(work / "in.txt"), write(outside)]}, "done")
    agent.chat("write both")
    assert (work / "in.txt").read_text() == "new\n" and not outside.exists()
    [(name, why, preview)] = asked.asked
    assert name == "write_file" and "outside the workspace" in why and "+new" in preview
    assert "declined" in server.requests[1]["messages"][-1]["content"]


def test_always_is_remembered_for_the_session_and_shared_with_sub_agents(server, llm, tmp_path):
    asked = Asked("always")
    agent = Agent(llm=llm, cwd=tmp_path, on_event=asked, approvals=True)
    server.add({"tool_calls": [write(tmp_path / "a.txt")]}, {"tool_calls": [write(tmp_path / "b.txt")]}, "ok")
    agent.chat("write")
    assert len(asked.asked) == 1 and (tmp_path / "b.txt").exists()
    assert f"write_file on files directly in {tmp_path.resolve()}" in agent.permissions.always


def test_a_protected_file_asks_even_with_yes(server, llm, tmp_path):
    (tmp_path / ".git").mkdir()
    asked = Asked(False)
    agent = Agent(llm=llm, cwd=tmp_path, on_event=asked, approvals=True, permissions=Permissions("yes"))
    server.add({"tool_calls": [write(tmp_path / ".git" / "config", "[core]\n")]}, "ok")
    agent.chat("change git config")
    assert not (tmp_path / ".git" / "config").exists() and "git's own data" in asked.asked[0][1]


def test_the_edit_diff_is_shown_before_it_is_made(server, llm, tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    asked = Asked(True)
    agent = Agent(llm=llm, cwd=tmp_path, on_event=asked, approvals=True)
    server.add({"tool_calls": [{"name": "edit_file", "arguments": {
        "file_path": "a.py", "old_string": "x = 1", "new_string": "x = 2"}}]}, "ok")
    agent.chat("edit")
    assert "-x = 1\n+x = 2" in asked.asked[0][2] and (tmp_path / "a.py").read_text() == "x = 2\n"


def test_write_tool_kind_follows_the_workspace_root_not_cd(tmp_path):
    ws = Workspace(tmp_path)
    ws.cwd = tmp_path.parent  # the model ran `cd ..`
    tool = WriteFileTool(ws)
    assert tool.permission({"file_path": str(tmp_path / "a")}).kind == EDIT
    assert tool.permission({"file_path": "a"}).kind == OUTSIDE


def test_bash_kinds_and_what_always_covers(tmp_path):
    from nanocoder.tools.bash import BashTool
    bash = BashTool(Workspace(tmp_path))
    kind = lambda command: bash.permission({"command": command})
    assert kind("git status").kind == READ and kind("pytest -q").kind == RUN
    assert kind("rm -rf ~").kind == FORBIDDEN
    assert kind("pytest -q tests/").key == kind("pytest -x").key == f"bash `pytest …` in {tmp_path}"
    assert kind("cd sub && rm -rf x").key != kind("cd sub").key
    assert kind("ls; rm -rf x").key == f"bash exactly `ls; rm -rf x` in {tmp_path}"  # only this exact text
    assert kind("echo $(rm -rf x)").key != kind("echo hi").key


def test_forbidden_is_refused_even_in_yes_mode_and_read_only_never_asks(server, llm, tmp_path):
    asked = Asked()
    agent = Agent(llm=llm, cwd=tmp_path, on_event=asked, approvals=True, permissions=Permissions("yes"))
    server.add({"tool_calls": [{"name": "bash", "arguments": {"command": "touch ran && rm -rf ~"}}]}, "ok")
    agent.chat("clean up")
    assert "refused" in server.requests[1]["messages"][-1]["content"] and not (tmp_path / "ran").exists()
    agent = Agent(llm=llm, cwd=tmp_path, on_event=asked, approvals=True, permissions=Permissions("ask"))
    server.add({"tool_calls": [{"name": "bash", "arguments": {"command": "ls -la | wc -l"}}]}, "ok")
    agent.chat("count")
    assert asked.asked == [] and "[exit code: 0]" in server.requests[-1]["messages"][-1]["content"]


def test_always_for_workspace_edits_does_not_cover_writes_outside(server, llm, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    asked = Asked("always", False)
    agent = Agent(llm=llm, cwd=work, on_event=asked, approvals=True)
    server.add({"tool_calls": [write(work / "a.txt")]}, {"tool_calls": [write(tmp_path / "out.txt")]}, "ok")
    agent.chat("write")
    assert len(asked.asked) == 2 and "outside" in asked.asked[1][1] and not (tmp_path / "out.txt").exists()


def test_a_file_call_is_judged_again_as_its_path_resolves_when_it_runs(llm, tmp_path, monkeypatch):
    """The race a parallel `cd ~` made: judged with one folder, run in another."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    agent = Agent(llm=llm, cwd=work, permissions=Permissions("edits"))
    args = {"file_path": ".bashrc", "content": "evil\n"}
    from nanocoder.llm import ToolCall
    call = ToolCall("call_1", "write_file", "")
    kind = agent._permit(call, args)  # in the workspace: an edit, allowed
    agent.workspace.cwd = home.resolve()  # what `cd ~` in a parallel bash call does meanwhile
    result = agent._run_one(call, args, kind).result
    assert result.is_error and "not run" in result.text() and not (home / ".bashrc").exists()
