"""bash: run a shell command in the workspace's folder and answer with its output. What a command starts ends
with it; `cd` carries over through an EXIT trap; it runs in the sandbox where Landlock works, without secrets
in its environment, and .git and the start-up files are put back after it (Guard)."""
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from contextlib import suppress
from pathlib import Path

from ..permissions import FORBIDDEN, READ, RUN
from ..context import head_tail
from ..guard import Guard
from .base import Permission, ToolError, ToolResult, WorkspaceTool
from .shell import READ_ONLY, classify, prefix

MAX_OUTPUT = 30_000           # characters shown to the model
KEEP = 1_000_000              # bytes kept of each end of the output; the middle is counted only
DEFAULT_TIMEOUT, MAX_TIMEOUT = 120, 600
GRACE = 2                     # seconds between SIGTERM and SIGKILL
QUIET = {"GIT_EDITOR": "true", "PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0"}
# names: API_KEY, GH_PAT, MYSQL_PWD, DATABASE_URL, GOOGLE_APPLICATION_CREDENTIALS, BW_SESSION... (not PWD,
# GIT_AUTHOR_NAME, XAUTHORITY or SSH_AUTH_SOCK, which SOCKET judges); values: a URL with a password in it,
# tokens by their well-known prefixes
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASS(W|PHRASE|$)|CREDENTIAL|AUTH(?!OR|_SOCK$)|COOKIE|WEBHOOK|"
                         r"PRIVATE|CONN(ECTION)?_?STR|_(PAT|PWD|PW|DSN)$|^DSN$|(^|_)SESSION$|^OP_SESSION_|"
                         r"(DATABASE|DB|REDIS|MONGO(DB)?|AMQP|RABBITMQ|POSTGRES(QL)?|PG|MYSQL|BROKER)"
                         r"_UR[LI]$", re.I)
SECRET_VALUE = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@|\b(gh[opsru]_[A-Za-z0-9]{30}|github_pat_|"
                          r"glpat-|xox[abpr]-|AKIA[0-9A-Z]{16}\b|sk-[A-Za-z0-9_-]{20})", re.I)
# what leads to a unix socket (ssh-agent, D-Bus, tmux, X11, an editor's or terminal's remote control, docker)
SOCKET = re.compile(r"SOCK|^(GPG_AGENT_INFO|DBUS_\w+_BUS_ADDRESS|TMUX|TMUX_PANE|STY|ZELLIJ|DISPLAY|"
                    r"WAYLAND_DISPLAY|XAUTHORITY|KITTY_LISTEN_ON|NVIM|NVIM_LISTEN_ADDRESS|"
                    r"VSCODE_IPC_HOOK_CLI|PULSE_SERVER|GNOME_KEYRING_CONTROL)$")

class BashTool(WorkspaceTool):
    name = "bash"
    description = ("Run a shell command in the working directory and return its output "
                   "(stdout and stderr together) and exit code. `cd` carries over to later calls. "
                   "There is no terminal: no input is possible, so use non-interactive flags. "
                   "Processes it starts in the background are stopped when it ends.")
    parameters = {"type": "object", "required": ["command"], "properties": {
        "command": {"type": "string", "description": "The command to run with bash -c."},
        "timeout": {"type": "integer",
                    "description": f"Seconds before it is stopped (default {DEFAULT_TIMEOUT}, "
                                   f"at most {MAX_TIMEOUT})."}}}

    def __init__(self, workspace):
        super().__init__(workspace)
        # several calls may run at once (a set's add, discard and copy are atomic: no lock)
        self._running: set[subprocess.Popen] = set()

    def check_args(self, args) -> str | None:
        if isinstance(args.get("command"), str) and "\0" in args["command"]:  # before it is judged or run
            return "the command holds a NUL byte (\\0), which no shell command can; nothing was run"
        return super().check_args(args)

    def permission(self, args: dict) -> Permission:
        verdict, why = classify(args.get("command", ""), self.workspace.cwd, root=self.workspace.root)
        kind = {FORBIDDEN: FORBIDDEN, READ_ONLY: READ}.get(verdict, RUN)
        # "always" covers a program (with its subcommand or script) in this folder, or else this exact text
        command = args.get("command", "")
        found = prefix(command, self.workspace.cwd, self.workspace.root)
        covers = f"`{found} …`" if found else f"exactly `{command}`"
        return Permission(kind, f"bash {covers} in {self.workspace.cwd}", why)

    def execute(self, command: str, timeout: int | None = None) -> ToolResult:
        verdict, why = classify(command, self.workspace.cwd, root=self.workspace.root)
        if verdict == FORBIDDEN:  # checked here too: a library user's own permission policy may allow all
            raise ToolError(f"refused: {why}. The command was not run.")
        sandbox, root = self.workspace.sandbox, self.workspace.root
        policy = "off" if sandbox.support() else self.workspace.policy()
        if verdict == READ_ONLY and policy == "workspace-write":
            policy = "read-only"  # a misjudged "read-only" command can then do no harm
        guard = Guard(root, Path.home().resolve()) if policy == "workspace-write" else None
        result = self._run(command, timeout, policy)
        if guard and (restored := guard.restore()):  # first: the line a view shows
            result.content.insert(0, f"[nanocoder put back what the command changed in "
                                     f"{', '.join(restored)}: commands may not change them]")
        if policy == "off" or result.is_error or result.exit_code <= 0 or result.timed_out:
            return result
        # Whether the sandbox denied something, nothing here can know: Landlock answers the command's own
        # open() or rename() with EACCES or EXDEV, which only the command sees, and the helper sees only how
        # it exited. Its words are no proof either way (a program may say permission was denied for a
        # reason of its own, or nothing at all). So every failure in the sandbox says where it ran, and
        # may run again outside it if the user agrees (ask mode: Agent._offer_rerun).
        judged = " (the command was judged read-only)" if policy != self.workspace.policy() else ""
        result.content.append(f"[It ran in the sandbox{judged}, which may be why it failed: "
                              f"{sandbox.describe(policy, root, self.workspace.unix_sockets)}.]")
        if not judged:  # one judged read-only fails for reasons of its own (grep finds nothing): not offered
            result.rerun = lambda: self._run(command, timeout, "off")
            result.question = f"`{command}` failed in the sandbox ({policy}); run it again outside it?"
        return result

    def _run(self, command: str, timeout: int | None, policy: str) -> ToolResult:
        timeout = min(max(1, timeout or DEFAULT_TIMEOUT), MAX_TIMEOUT)
        cwd_read, cwd_write = os.pipe()
        # bash moves the pipe to fd 99, out of the way of a script's own fds; the trap checks it runs in the
        # shell itself, as a `cmd &` killed before its exec would run it too (bash 3.2, macOS's, has no
        # BASHPID)
        bash = shutil.which("bash")
        script = (f"exec 99>&{cwd_write} {cwd_write}>&-; "
                  f"trap '[ ${{BASHPID:-$$}} = $$ ] && pwd -P >&99' EXIT\n"
                  if bash else f"trap 'pwd -P >/dev/fd/{cwd_write}' EXIT\n") + command  # sh: fds 0-9 only
        sandbox = self.workspace.sandbox
        argv = sandbox.command([bash or "/bin/sh", "-c", script], policy, self.workspace.root,
                               self.workspace.unix_sockets)
        try:
            proc = subprocess.Popen(
                argv, cwd=self.workspace.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                start_new_session=True, stderr=subprocess.STDOUT, env=environment(self.workspace) | QUIET,
                pass_fds=(cwd_write, *sandbox.fds))
        except OSError as e:
            os.close(cwd_read)
            return ToolResult.error(f"cannot run the command in {self.workspace.cwd}: {e.strerror or e}")
        finally:
            os.close(cwd_write)
        self._running.add(proc)
        capture = Capture()
        reader = threading.Thread(target=capture.read, args=(proc.stdout,), daemon=True)
        reader.start()
        # A timer, not wait(timeout=...): that polls with sleeps of up to 50 ms, so a 15 ms command took 30.
        timed_out = threading.Event()

        def time_out():
            timed_out.set()
            kill_group(proc)
        timer = threading.Timer(timeout, time_out)
        timer.start()
        try:
            code = proc.wait()
        finally:
            timer.cancel()
            kill_group(proc)  # what it started in the background ends with it
            self._running.discard(proc)
        reader.join(timeout=1)  # without the helper (macOS), a process that left the group may hold the pipe
        # what the EXIT trap wrote; a process left holding the pipe is not waited for
        os.set_blocking(cwd_read, False)
        with open(cwd_read, "rb") as pipe:
            cwd = Path((pipe.read() or b"").decode(errors="replace").strip())
        if cwd.is_absolute() and cwd.is_dir():
            self.workspace.cwd = cwd
        out = [capture.text() or "(no output)"]
        if reader.is_alive():
            out.append("[background processes still hold the output; what they print later is not shown]")
        if timed_out.is_set():
            out.append(f"[Command timed out after {timeout} s and was stopped]")
        name = signal.Signals(-code).name if code < 0 and -code in signal.valid_signals() else ""
        return ToolResult(out, exit_code=code, signal=name, timed_out=timed_out.is_set(), sandbox=policy)

    def cancel(self) -> None:
        # in threads, so every group gets its SIGTERM at once
        for proc in self._running.copy():
            threading.Thread(target=kill_group, args=(proc,), daemon=True).start()


def environment(workspace) -> dict:
    """os.environ without secrets and, when commands run sandboxed without unix sockets, what leads to one."""
    passed = os.environ.get("NANOCODER_PASS_ENV", "").split(",")
    secrets = (workspace.secrets | {os.environ.get("OPENAI_API_KEY")}) - {None, ""}
    sockets = workspace.unix_sockets or workspace.sandbox_policy == "off" or workspace.sandbox.support()
    return {name: value for name, value in os.environ.items() if name in passed or not (
        SECRET_NAME.search(name) or SECRET_VALUE.search(value) or value in secrets
        or not sockets and (SOCKET.search(name) or value.startswith("unix:")))}


class Capture:
    """Keeps the head and the tail of a stream, since a command may print gigabytes."""

    def __init__(self):
        self.kept, self.dropped = bytearray(), 0

    def read(self, stream) -> None:
        with stream:
            while chunk := os.read(stream.fileno(), 65536):
                self.kept += chunk
                if len(self.kept) > 3 * KEEP:  # the head's KEEP bytes and more than 2*KEEP of the tail
                    self.dropped += len(self.kept) - 2 * KEEP
                    del self.kept[KEEP:-KEEP]

    def text(self) -> str:
        kept, dropped = bytes(self.kept), self.dropped
        if dropped:  # the tail holds KEEP to 2*KEEP bytes: show the last KEEP, count the rest
            kept, dropped = kept[:KEEP] + kept[-KEEP:], dropped + len(kept) - 2 * KEEP
        what = f"characters and {dropped:,} more bytes" if dropped else "characters"
        return head_tail(kept.decode("utf-8", errors="replace").rstrip("\n"), MAX_OUTPUT, what)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the command's process group, then SIGKILL what is left after GRACE. On Linux the sandbox helper
    leads the group and ends even what left it; without it (macOS), that is out of reach."""
    deadline, sig = time.monotonic() + GRACE, signal.SIGTERM
    with suppress(OSError):  # none left in the group
        while True:
            os.killpg(proc.pid, sig)
            if sig == signal.SIGKILL:
                return
            proc.poll()  # reap the helper (or the shell), so only live processes keep the group alive
            time.sleep(0.05)
            sig = 0 if time.monotonic() < deadline else signal.SIGKILL
