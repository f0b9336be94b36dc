"""The system prompt, built once per session, and the environment (folder, date, git status),
which is sent again only as a short note when it has moved on: an unchanged prefix is what lets
a provider's prompt cache serve the history at a fraction of the price."""
import os
import platform
import subprocess
from datetime import date
from pathlib import Path

from .tools.base import printable

INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md")
INSTRUCTIONS_CAP = 8_000  # characters: a huge file must not eat the context window
# A downloaded repository's .git/config must not run anything when we only look (fsmonitor,
# hooks, submodules' own configs, filter drivers; those are switched off per name below).
INERT = ["-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "diff.external=",
         "--no-optional-locks"]

BASE = """You are nanocoder, a coding agent working in the user's terminal, in their repository.
Solve the task with the tools, then answer briefly.
- Look before you change: read a file before editing it; use glob and grep to find code.
- Change files with edit_file (old_string must match exactly once) or write_file for new files.
- Check your work: run the tests or the program with bash when you can.
- Use the agent tool to hand a self-contained sub-task to a helper with a fresh context.
- Never run destructive commands the user did not ask for."""


def system_prompt(cwd: Path, tools, env: str) -> str:
    parts = [BASE, "# Environment",
             f"- OS: {platform.system()} {platform.release()}; shell: {os.environ.get('SHELL', '/bin/sh')}",
             f"- Tools: {', '.join(tools)}", env]
    instructions = _instructions(cwd)
    if instructions:
        parts.append(instructions)
    return printable("\n".join(parts))  # a folder name that is not UTF-8 must not break the request


def environment(cwd: Path) -> str:
    """What moves on during a session: the folder, the date and git's view of it."""
    lines = [f"- Working directory: {cwd}", f"- Date: {date.today().isoformat()}", _git_summary(cwd)]
    return printable("\n".join(filter(None, lines)))


def git(cwd, *args) -> str | None:
    """Run git inertly: stdout, or None if it failed (not a repository, no git)."""
    try:
        filters = _run(cwd, "config", "-z", "--name-only", "--get-regexp",
                       r"^filter\..*\.(clean|smudge|process)$")
        off = [x for name in (filters or "").split("\0") if name for x in ("-c", f"{name}=")]
        return _run(cwd, *off, *args)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _run(cwd, *args) -> str | None:
    out = subprocess.run(["git", *INERT, *args], cwd=cwd, capture_output=True, text=True, errors="replace",
                         timeout=3, stdin=subprocess.DEVNULL)
    return out.stdout.strip() if out.returncode == 0 else None


def _git_summary(cwd) -> str | None:
    branch = git(cwd, "branch", "--show-current")  # works before the first commit, too
    if branch is None:
        return None
    status = (git(cwd, "status", "--porcelain", "--ignore-submodules=all") or "").splitlines()
    shown = "\n".join(f"  {line}" for line in status[:20])
    more = f"\n  ... and {len(status) - 20} more" if len(status) > 20 else ""
    return (f"- Git branch: {branch or '(detached HEAD)'}; {len(status) or 'no'} changed files\n"
            f"{shown}{more}").rstrip()


def _instructions(cwd: Path) -> str | None:
    for name in INSTRUCTION_FILES:  # AGENTS.md wins over CLAUDE.md
        path = cwd / name
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            if len(text) > INSTRUCTIONS_CAP:
                text = text[:INSTRUCTIONS_CAP] + f"\n[... {name} cut at {INSTRUCTIONS_CAP} characters]"
            return f"# Project instructions ({name})\n{text}"
    return None
