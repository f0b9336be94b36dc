"""The dynamic system prompt: where the agent is, git state, project instructions."""
import subprocess
from datetime import date

from nanocoder.prompt import INSTRUCTIONS_CAP, system_prompt


def test_environment_is_described(tmp_path):
    text = system_prompt(tmp_path, ["bash", "read_file"])
    assert str(tmp_path) in text and date.today().isoformat() in text
    assert "bash, read_file" in text
    assert "Git branch" not in text


def test_git_branch_and_status(tmp_path):
    subprocess.run(["git", "init", "-q", "-b", "feature-x"], cwd=tmp_path, check=True)
    (tmp_path / "new.py").write_text("x = 1\n")
    text = system_prompt(tmp_path, [])
    assert "Git branch: feature-x" in text and "?? new.py" in text


def test_agents_md_wins_over_claude_md_and_is_capped(tmp_path):
    (tmp_path / "CLAUDE.md").write_text("claude rules")
    assert "claude rules" in system_prompt(tmp_path, [])
    (tmp_path / "AGENTS.md").write_text("agents rules " + "z" * (INSTRUCTIONS_CAP * 2))
    text = system_prompt(tmp_path, [])
    assert "agents rules" in text and "claude rules" not in text
    assert "cut at" in text and len(text) < INSTRUCTIONS_CAP + 3000
