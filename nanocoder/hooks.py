"""Command hooks in Claude Code's shape, read from ~/.nanocoder/settings.json (see the README). Each gets the
event as JSON on stdin; exit 2 from a PreToolUse hook blocks the call, its stderr going to the model; the
others only watch. A project's own settings are never read: a cloned repository could run code."""
import json
import os
import re
import signal
import subprocess
import threading
from contextlib import suppress
from dataclasses import dataclass

from . import events as ev
from .config import ConfigError, read_settings
from .tools.bash import Capture

TIMEOUT = 60


EVENTS = ("PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop")


@dataclass
class Ran:
    code: int  # the hook's exit code (1: it could not run, or timed out)
    stderr: str


class Hooks:
    def __init__(self, settings: dict, session_id: str, cwd, aliases=None):
        """aliases: each tool's name in Claude Code (the registry's), which matchers and payloads use."""
        self.hooks, self.session_id, self.cwd = settings.get("hooks") or {}, session_id, str(cwd)
        self.aliases = aliases or {}
        _check(self.hooks)

    @classmethod
    def load(cls, path, session_id, cwd, aliases=None) -> "Hooks | None":
        settings = read_settings(path, [])  # read as the settings are: the same errors, each one line
        return cls(settings, session_id, cwd, aliases) if settings else None

    def gate(self, name: str, args: dict) -> ev.Decision:
        """The agent's gate: the PreToolUse hooks' answer (exit 2 denies, saying why on stderr)."""
        blocked = [ran.stderr.strip() or "(no reason given)"
                   for ran in self._run("PreToolUse", name, tool_input=args) if ran.code == 2]
        return ev.Decision.deny("; ".join(blocked)) if blocked else ev.Decision.once()

    def __call__(self, event) -> None:
        """An on_event consumer for the hooks that only watch."""
        if isinstance(event, ev.ToolFinished) and event.ran:  # as Claude Code: only calls that ran
            self._run("PostToolUse", event.name, tool_input=event.args,
                      tool_response={"result": event.result, "is_error": event.is_error})
        elif isinstance(event, ev.TurnStarted) and not event.depth:
            self._run("UserPromptSubmit", prompt=event.prompt)
        elif isinstance(event, ev.TurnEnded) and not event.depth:
            self._run("Stop", stop_hook_active=False, reason=event.reason)

    def _run(self, kind: str, tool: str | None = None, **fields) -> list[Ran]:
        payload = {"session_id": self.session_id, "cwd": self.cwd, "hook_event_name": kind, **fields}
        if tool:
            payload["tool_name"] = self.aliases.get(tool, tool)
        outcomes = []
        for group in self.hooks.get(kind) or []:
            if tool and not _matches(str(group.get("matcher") or ""), tool, payload["tool_name"]):
                continue
            for hook in group.get("hooks") or []:
                try:
                    outcomes.append(self._run_one(hook["command"], json.dumps(payload).encode(),
                                                  hook.get("timeout", TIMEOUT)))
                except (OSError, KeyError, TypeError, ValueError) as e:
                    outcomes.append(Ran(1, f"hook failed: {e}"))
        return outcomes

    def _run_one(self, command: str, payload: bytes, timeout) -> Ran:
        """stderr is read as it comes and only its head and tail are kept (a hook may
        print gigabytes), decoded with replacement (or any bytes at all)."""
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, cwd=self.cwd, start_new_session=True)
        capture = Capture()
        reader = threading.Thread(target=capture.read, args=(proc.stderr,), daemon=True)
        reader.start()
        # in a thread too: a hook that reads nothing would block a large payload's write, and its timeout
        threading.Thread(target=_feed, args=(proc.stdin, payload), daemon=True).start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if proc.poll() is None:  # timed out, or a timeout that is no number: it ends with its children
                with suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        reader.join(timeout=1)  # what the hook left running in the background may hold stderr
        if code is None:
            return Ran(1, f"hook failed: `{command}` timed out after {timeout} s")
        return Ran(code, capture.text())


def _feed(stdin, payload: bytes) -> None:
    with suppress(OSError):  # BrokenPipeError: the hook did not read its input
        with stdin:
            stdin.write(payload)


def _check(hooks) -> None:
    """settings.json's "hooks" in the shape the README shows, or one clear line saying where it is not."""
    where = 'settings.json: "hooks"'
    if not isinstance(hooks, dict):
        raise ConfigError(f"{where} must be an object of events ({', '.join(EVENTS)})")
    for event, groups in hooks.items():
        if event not in EVENTS:
            raise ConfigError(f"{where} names an unknown event {event!r}; known: {', '.join(EVENTS)}")
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            raise ConfigError(f'{where}.{event} must be a list of {{"matcher": ..., "hooks": [...]}} objects')
        for n, group in enumerate(groups):
            commands = group.get("hooks") or []
            if not isinstance(group.get("matcher") or "", str) or not isinstance(commands, list):
                raise ConfigError(f'{where}.{event}[{n}] needs a "matcher" string and a "hooks" list')
            for hook in commands:
                timeout = hook.get("timeout", TIMEOUT) if isinstance(hook, dict) else None
                if not (isinstance(hook, dict) and isinstance(hook.get("command"), str) and hook["command"]
                        and isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
                        and 0 < timeout <= 86_400):
                    raise ConfigError(f'{where}.{event}[{n}]: each hook needs a "command" string '
                                      f'(and a "timeout" of 1 to 86400 seconds, if any); got {hook!r}'[:300])


def _matches(matcher: str, *names) -> bool:
    try:
        return matcher in ("", "*") or any(re.fullmatch(matcher, n, re.I) for n in names)
    except re.error:  # a broken pattern matches nothing, as a typo in a name would
        return False
