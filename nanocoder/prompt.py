"""The system prompt, built once per session, and the environment (folder, date, git status), sent again only
as a short note when it moved on: an unchanged prefix lets a prompt cache serve the history cheaply."""
import os
import platform
import subprocess
from datetime import date

from .tools.base import printable

# A downloaded repository's .git/config must not run anything when we only look (fsmonitor,
# hooks, submodules' own configs, filter drivers: those are switched off per name below; a lazy
# fetch of a missing object runs remote.*.uploadpack: no transport at all).
INERT = ["-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "diff.external=",
         "-c", "protocol.allow=never", "--no-optional-locks"]
# git's environment is built, not inherited: GIT_DIR, GIT_CONFIG_*, GIT_EXEC_PATH... would redirect it
GIT_ENV = ("HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "XDG_CONFIG_HOME")
# One sandboxed process (each costs a start-up): the filter drivers' names first, each then switched off.
STATUS = r"""names=$("$@" config --name-only --get-regexp '^filter\..*\.(clean|smudge|process)$' 2>/dev/null)
while IFS= read -r name; do [ -n "$name" ] && set -- "$@" -c "$name="; done <<EOF
$names
EOF
exec "$@" status --porcelain --branch --ignore-submodules=all"""

BASE = """You are nanocoder, a coding agent working in the user's terminal, in their repository.
Solve the task with the tools, then answer briefly.
- Look before you change: read a file before editing it; use glob and grep to find code.
- Change files with edit_file (old_string must match exactly once) or write_file for new files.
- Check your work: run the tests or the program with bash when you can.
- Use the agent tool to hand a self-contained sub-task to a helper with a fresh context.
- Never run destructive commands the user did not ask for."""


PLAN_NOTE = ("[Plan mode: investigate with the reading tools only; edits are refused and commands run "
             "read-only. End your answer with a concise, numbered plan of the changes: the user reads it "
             "and may switch to carrying it out.]")


def system_prompt(tools, env: str, project) -> str:
    """project: a project.Project, whose memory files join the prompt."""
    parts = [BASE, "# Environment",
             f"- OS: {platform.system()} {platform.release()}; shell: {os.environ.get('SHELL', '/bin/sh')}",
             f"- Tools: {', '.join(tools)}", env, project.prompt()]
    # printable: a folder name that is not UTF-8 must not break the request
    return printable("\n".join(filter(None, parts)))


def environment(workspace) -> str:
    """What moves on during a session: the folder, the date and git's view of it."""
    lines = [f"- Working directory: {workspace.cwd}", f"- Date: {date.today().isoformat()}"]
    if status := git_status(workspace):
        head, *changed = status.splitlines()
        head = head.removeprefix("## ").removeprefix("No commits yet on ").removeprefix("Initial commit on ")
        branch = "" if head.startswith("HEAD (no branch)") else head.split("...")[0]
        lines.append(f"- Git branch: {branch or '(detached HEAD)'}; {len(changed) or 'no'} changed files")
        lines += [f"  {line}" for line in changed[:20]]
        if len(changed) > 20:
            lines.append(f"  ... and {len(changed) - 20} more")
    return printable("\n".join(lines))


def git_env(workspace) -> dict:
    """The environment nanocoder's own git runs in: built, with the trusted PATH, no prompts, no fetches."""
    env = {name: value for name, value in os.environ.items() if name in GIT_ENV or name.startswith("LC_")}
    return env | {"PATH": os.pathsep.join(workspace.trusted_path), "GIT_NO_LAZY_FETCH": "1",
                  "GIT_TERMINAL_PROMPT": "0"}


def git_status(workspace) -> str | None:
    """`git status --porcelain --branch` by the workspace's git (see Workspace.git), inert and in the
    read-only sandbox: its output, or None if it failed (not a repository, no git)."""
    if not workspace.git:
        return None
    env = git_env(workspace)
    argv = workspace.sandbox.command(["/bin/sh", "-c", STATUS, "sh", workspace.git, *INERT], "read-only",
                                     workspace.root)
    try:
        out = subprocess.run(argv, cwd=workspace.cwd, capture_output=True, text=True, errors="replace",
                             env=env, timeout=3, stdin=subprocess.DEVNULL, pass_fds=workspace.sandbox.fds)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.rstrip() if out.returncode == 0 else None

