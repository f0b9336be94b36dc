"""Project memory (AGENTS.md / CLAUDE.md), custom commands and skills (nanocoder/project.py): read once per
session, untrusted input handled, through the agent and the scripted model, the installed command (-p) and
the REPL's screen."""
import os
import subprocess

import pytest

from nanocoder import Agent
from nanocoder import events as ev
from nanocoder.project import FILE_CAP, MEMORY_CAP, MEMORY_TOTAL, Project
from nanocoder.permissions import PROTECTED, READ, read_kind
from scripted import ScriptedServer
from test_cli import NANOCODER
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
    (repo / ".nanocoder" / "commands").mkdir(parents=True)
    os.mkfifo(repo / ".nanocoder" / "commands" / "fifo.md")
    subsub = sub / "subsub"
    subsub.mkdir()
    (subsub / "CLAUDE.md").write_bytes(b"caf\xe9 \xff rules")  # not UTF-8
    project = Project.load(subsub)
    text = project.prompt()
    assert "PRIVATE-KEY-TEXT" not in text
    assert "caf\ufffd \ufffd rules" in text
    assert len(project.memory) == 1 and project.commands == {}
    fifo = repo / ".nanocoder" / "commands" / "fifo.md"
    assert [note.split(": ")[0] for note in project.notes] == [str(repo / "AGENTS.md"), str(fifo)]


def test_commands_fill_in_arguments_and_the_project_shadows_the_user(home, repo):
    user, own = home / ".nanocoder" / "commands", repo / ".nanocoder" / "commands"
    user.mkdir()
    own.mkdir(parents=True)
    (user / "review.md").write_text("USER REVIEW $ARGUMENTS")
    (user / "greet.md").write_text("---\ndescription: say hello\n---\nHello $1 and $2, not $3.")
    (own / "review.md").write_text("---\ndescription: 'review files'\n---\n"
                                   "Review $ARGUMENTS carefully; first $1.")
    (own / "plain.md").write_text("Just do it.")
    (own / "help.md").write_text("never used: /help is built in")
    (own / "bad name.md").write_text("never used")
    (own / "huge.md").write_text("z" * (FILE_CAP * 2))
    project = Project.load(repo)
    assert project.expand('/review "a b.py" c.py') == 'Review "a b.py" c.py carefully; first a b.py.'
    assert project.commands["review"].description == "review files"
    assert project.expand("/greet Ann Bob") == "Hello Ann and Bob, not ."
    assert project.expand("/plain now please") == "Just do it.\n\nARGUMENTS: now please"
    assert project.expand("/greet 'unclosed") == "Hello 'unclosed and , not ."
    assert project.expand("/help") is None and project.expand("/nothing") is None
    assert project.expand("review x") is None  # only a line that starts with /
    assert sorted(project.commands) == ["greet", "huge", "plain", "review"]
    assert len(project.commands["huge"].body) == FILE_CAP
    assert sum("left out" in note for note in project.notes) == 2, project.notes


def test_skills_are_named_in_the_system_prompt_and_read_on_demand(home, repo, server, llm):
    skill = repo / ".nanocoder" / "skills" / "release"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: release\ndescription: How to cut a release\n---\n"
                                    "SKILL-BODY-STEPS")
    mine = home / ".nanocoder" / "skills" / "style"
    mine.mkdir(parents=True)
    (mine / "SKILL.md").write_text("---\nname: style\ndescription: The house style\n---\nMY-STYLE-BODY")
    nameless = repo / ".nanocoder" / "skills" / "empty"
    nameless.mkdir()
    (nameless / "SKILL.md").write_text("no frontmatter, no description")
    read = {"name": "read_file", "arguments": {"file_path": str(mine / "SKILL.md")}}
    server.add({"tool_calls": [read]}, "ok")
    asked = []

    def deny(event):
        if isinstance(event, ev.ApprovalRequested):
            asked.append(event)
            event.answer(ev.Decision.deny())
    Agent(llm, cwd=repo, approvals=True, on_event=deny).chat("style check")
    system = server.requests[0]["messages"][0]["content"]
    assert f"- release: How to cut a release ({skill / 'SKILL.md'})" in system
    assert f"- style: The house style ({mine / 'SKILL.md'})" in system
    assert "SKILL-BODY-STEPS" not in system and "MY-STYLE-BODY" not in system and "empty" not in system
    assert asked == [] and "MY-STYLE-BODY" in server.requests[1]["messages"][-1]["content"]  # read, not asked
    # nanocoder's own settings and sessions stay asked-for, as any key
    assert read_kind(home / ".nanocoder" / "settings.json")[0] == PROTECTED
    assert read_kind(home / ".nanocoder" / "commands" / "x.md")[0] == READ


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


def test_a_custom_command_is_the_prompt_of_p(home, repo):
    own = repo / ".nanocoder" / "commands"
    own.mkdir(parents=True)
    (own / "review.md").write_text("---\ndescription: review\n---\nPlease review $1 for bugs.")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_"))}
    env.update(HOME=str(home), NO_COLOR="1", NO_PROXY="127.0.0.1")
    with ScriptedServer() as server:
        server.add("Reviewed.")
        done = subprocess.run([str(NANOCODER), "--base-url", server.url, "--api-key", "k", "-m", "scripted",
                               "-p", "/review src"], env=env, cwd=repo, capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and done.stdout == "Reviewed.\n", done.stderr
    assert server.requests[0]["messages"][-1]["content"] == "Please review src for bugs."


def test_the_repl_lists_memory_and_commands_completes_and_runs_them(tmp_path, model):  # noqa: F811
    home, work = tmp_path / "home", tmp_path / "work"
    (work / ".nanocoder" / "commands").mkdir(parents=True)
    (home / ".nanocoder").mkdir(parents=True)
    (work / "AGENTS.md").write_text("Use tabs.")
    (work / ".nanocoder" / "commands" / "deploy.md").write_text(
        "---\ndescription: ship it now\n---\nDeploy $1.")
    (work / ".nanocoder" / "commands" / "model.md").write_text("shadowed by the built-in")
    t = Terminal(model("Deploying."), home, work)
    t.expect(PROMPT)
    t.turn("/memory", "(read at the session's start")
    screen = "".join("".join(t.lines()).split())  # rows joined, spaces dropped: a long path wraps
    assert f"memory:{work / 'AGENTS.md'}(9characters)" in screen
    assert "command:/deploy" in screen and "model.md:leftout" in screen
    t.turn("/help", "Custom commands:", "ship it now")
    t.child.send("/depl")
    t.child.send("\t")
    t.expect("oy")
    t.child.send(" staging\r")
    t.expect("Deploying.")
    t.expect(PROMPT)
    t.child.sendline("quit")
    t.child.expect("resume with")
    [path] = (home / ".nanocoder" / "sessions").glob("*.json")
    assert '"Deploy staging."' in path.read_text()
