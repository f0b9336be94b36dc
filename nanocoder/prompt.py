"""The system prompt, rebuilt every turn from where the agent is: folder, OS, date, git, rules."""
import os
import platform
import subprocess
from datetime import date
from pathlib import Path

INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md")
INSTRUCTIONS_CAP = 8_000  # characters: a huge file must not eat the context window

BASE = """You are nanocoder, a coding agent working in the user's terminal, in their repository.
Solve the task with the tools, then answer briefly.
- Look before you change: read a file before editing it; use glob and grep to find code.
- Change files with edit_file (old_string must match exactly once) or write_file for new files.
- Check your work: run the tests or the program with bash when you can.
- Use the agent tool to hand a self-contained sub-task to a helper with a fresh context.
- Never run destructive commands the user did not ask for."""


def system_prompt(cwd: Path, tools) -> str:
    parts = [BASE, "# Environment",
             f"- Working directory: {cwd}",
             f"- OS: {platform.system()} {platform.release()}; shell: {os.environ.get('SHELL', '/bin/sh')}",
             f"- Date: {date.today().isoformat()}",
             f"- Tools: {', '.join(tools)}"]
    git = _git_summary(cwd)
    if git:
        parts.append(git)
    instructions = _instructions(cwd)
    if instructions:
        parts.append(instructions)
    return "\n".join(parts)


def _git(cwd, *args) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _git_summary(cwd) -> str | None:
    branch = _git(cwd, "branch", "--show-current")  # works before the first commit, too
    if branch is None:
        return None
    branch = branch or "(detached HEAD)"
    status = (_git(cwd, "status", "--short") or "").splitlines()
    shown = "\n".join(f"  {line}" for line in status[:20])
    more = f"\n  ... and {len(status) - 20} more" if len(status) > 20 else ""
    return f"- Git branch: {branch}; {len(status) or 'no'} changed files\n{shown}{more}".rstrip()


def _instructions(cwd: Path) -> str | None:
    for name in INSTRUCTION_FILES:  # AGENTS.md wins over CLAUDE.md
        path = cwd / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            if len(text) > INSTRUCTIONS_CAP:
                text = text[:INSTRUCTIONS_CAP] + f"\n[... {name} cut at {INSTRUCTIONS_CAP} characters]"
            return f"# Project instructions ({name})\n{text}"
    return None
