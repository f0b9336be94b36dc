"""Project memory (AGENTS.md / CLAUDE.md, nanocoder/project.py): read once per session, untrusted input
handled, through the agent and the scripted model and the REPL's screen."""
import os

import pexpect
import pytest

from nanocoder import Agent
from nanocoder.project import MEMORY_CAP, MEMORY_TOTAL, Project
from test_screen import PROMPT, Terminal, model  # noqa: F401 - model: the fixture the Terminal needs


@pytest.fixture
def home(tmp_path, monkeypatch):
    folder = tmp_path / "home"
    (folder / ".nanocoder").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(folder))
    return folder


@pytest.fixture
def repo(tmp_path):
    folder = tmp_path / "outer" / "repo"
    (folder / ".git").mkdir(parents=True)  # a repository's root is where .git is
    return folder


def test_memory_from_home_and_the_repository_root_down_to_the_folder(home, repo):
    deeper = repo / "pkg" / "deeper"
    deeper.mkdir(parents=True)
    (repo.parent / "AGENTS.md").write_text("ABOVE-THE-REPOSITORY")
    (home / ".nanocoder" / "AGENTS.md").write_text("USER-WIDE")
    (repo / "AGENTS.md").write_text("ROOT-RULES")
    (repo / "pkg" / "CLAUDE.md").write_text("PKG-CLAUDE")
    (deeper / "AGENTS.md").write_text("DEEPER-AGENTS")
    (deeper / "CLAUDE.md").write_text("DEEPER-CLAUDE")  # AGENTS.md wins in its folder
    text = Project.load(deeper).prompt()
    found = [text.find(word) for word in ("USER-WIDE", "ROOT-RULES", "PKG-CLAUDE", "DEEPER-AGENTS")]
    assert -1 not in found and found == sorted(found), text  # general first, the nearest last
    assert "DEEPER-CLAUDE" not in text and "ABOVE-THE-REPOSITORY" not in text


def test_memory_is_capped_with_a_notice_each_and_in_all(home, repo):
    (repo / "AGENTS.md").write_text("start " + "x" * (MEMORY_CAP * 3))
    project = Project.load(repo)
    assert f"cut at {MEMORY_CAP:,} characters" in project.prompt()
    assert len(project.prompt()) < MEMORY_CAP + 300
    assert any("cut" in note for note in project.notes)
    folder = repo
    for n in range(6):  # six big files: together they may not pass MEMORY_TOTAL
        folder = folder / f"d{n}"
        folder.mkdir()
        (folder / "AGENTS.md").write_text(f"FILE{n} " + "y" * MEMORY_CAP)
    text = Project.load(folder).prompt()
    assert len(text) < MEMORY_TOTAL + 2000 and "cut at 0 characters" in text  # headers and notices beside


def test_untrusted_memory_files_never_hang_break_or_leak(home, repo):
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE-KEY-TEXT")
    (repo / "AGENTS.md").symlink_to(home / ".ssh" / "id_ed25519")  # a downloaded repository's trap
    sub = repo / "sub"
    sub.mkdir()
    os.mkfifo(sub / "AGENTS.md")  # opened blocking, it would hang the start for ever
    subsub = sub / "subsub"
    subsub.mkdir()
    (subsub / "CLAUDE.md").write_bytes(b"caf\xe9 \xff rules")  # not UTF-8
    project = Project.load(subsub)
    text = project.prompt()
    assert "PRIVATE-KEY-TEXT" not in text
    assert "caf\ufffd \ufffd rules" in text
    assert len(project.memory) == 1
    assert [note.split(": ")[0] for note in project.notes] == [str(repo / "AGENTS.md")]


def test_memory_is_read_once_per_session_and_again_after_clear(home, repo, server, llm):
    (repo / "AGENTS.md").write_text("FIRST VERSION")
    server.add("one", "two", "three")
    agent = Agent(llm, cwd=repo)
    agent.chat("a")
    (repo / "AGENTS.md").write_text("SECOND VERSION")
    agent.chat("b")
    first, second = (r["messages"][0]["content"] for r in server.requests)
    assert first == second and "FIRST VERSION" in first  # the cached prefix holds
    agent.reset()  # /clear
    agent.chat("c")
    assert "SECOND VERSION" in server.requests[2]["messages"][0]["content"]


def test_the_repl_lists_memory(tmp_path, model):  # noqa: F811
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    (home / ".nanocoder").mkdir(parents=True)
    (work / "AGENTS.md").write_text("Use tabs.")
    t = Terminal(model("Done."), home, work)
    t.expect(PROMPT)
    t.turn("/memory", "(read at the session's start")
    screen = "".join("".join(t.lines()).split())  # rows joined, spaces dropped: a long path wraps
    assert f"memory:{work / 'AGENTS.md'}(9characters)" in screen
    t.child.sendline("quit")
    t.child.expect(pexpect.EOF)
