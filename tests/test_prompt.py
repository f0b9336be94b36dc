"""The system prompt (built once per session), the environment note, and inert git calls."""
import subprocess
from datetime import date

from nanocoder import Agent
from nanocoder.project import MEMORY_CAP as INSTRUCTIONS_CAP, Project
from nanocoder.prompt import environment, system_prompt
from nanocoder.tools.base import Workspace


def prompt(folder, tools=()):
    workspace = Workspace(folder)
    return system_prompt(tools, environment(workspace), Project.load(workspace.cwd))


def test_environment_is_described(tmp_path):
    text = prompt(tmp_path, ["bash", "read_file"])
    assert str(tmp_path) in text and date.today().isoformat() in text
    assert "bash, read_file" in text
    assert "Git branch" not in text


def test_git_branch_and_status(tmp_path):
    subprocess.run(["git", "init", "-q", "-b", "feature-x"], cwd=tmp_path, check=True)
    (tmp_path / "new.py").write_text("x = 1\n")
    text = prompt(tmp_path)
    assert "Git branch: feature-x" in text and "?? new.py" in text


def test_agents_md_wins_over_claude_md_and_is_capped(tmp_path):
    (tmp_path / "CLAUDE.md").write_text("claude rules")
    assert "claude rules" in prompt(tmp_path)
    (tmp_path / "AGENTS.md").write_text("agents rules " + "z" * (INSTRUCTIONS_CAP * 2))
    text = prompt(tmp_path)
    assert "agents rules" in text and "claude rules" not in text
    assert "cut at" in text and len(text) < INSTRUCTIONS_CAP + 3000


def test_a_downloaded_repository_runs_nothing_when_we_look(tmp_path):
    repo, marks = tmp_path / "repo", tmp_path / "marks"
    repo.mkdir()
    marks.mkdir()
    git = lambda *a: subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=b", *a], cwd=repo, check=True,
                                    capture_output=True)
    git("init", "-q")
    (repo / "a.txt").write_text("hello\n")
    (repo / ".gitattributes").write_text("*.txt filter=evil diff=evil\n")
    git("add", ".")
    git("commit", "-qm", "x")
    run = lambda name: f'"touch {marks}/{name}; cat"'
    with open(repo / ".git" / "config", "a") as f:
        f.write(f'[core]\n\tfsmonitor = {run("fsmonitor")}\n\thooksPath = {marks}\n\tpager = {run("pager")}\n'
                f'[filter "evil"]\n\tclean = {run("clean")}\n\tsmudge = {run("smudge")}\n\tprocess = {run("process")}\n'
                f'[diff "evil"]\n\ttextconv = {run("textconv")}\n\tcommand = {run("extdiff")}\n')
    (repo / "a.txt").write_text("world\n")  # same size: git must look at the content (a clean filter)
    subprocess.run(["git", "status"], cwd=repo, capture_output=True)
    assert list(marks.iterdir()), "the test's repository should make plain `git status` run a program"
    for mark in marks.iterdir():
        mark.unlink()
    text = prompt(repo)
    assert "M a.txt" in text and list(marks.iterdir()) == []


def test_the_system_prompt_is_built_once_and_changes_arrive_as_a_note(server, llm, tmp_path):
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    server.add("one", "two", "three")
    agent = Agent(llm=llm, cwd=tmp_path)
    agent.chat("first")
    agent.chat("second")  # nothing moved: no note
    (tmp_path / "new.py").write_text("x = 1\n")
    agent.chat("third")
    first, second, third = (r["messages"] for r in server.requests)
    assert first[0] == second[0] == third[0]  # message 0 never rewritten: the cached prefix holds
    assert second[:len(first)] == first and third[:len(second)] == second
    assert second[-1]["content"] == "second"
    assert third[-1]["content"].startswith("<environment>") and "?? new.py" in third[-1]["content"]
    assert third[-1]["content"].endswith("third")
