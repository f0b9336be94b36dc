"""The sandbox helper's own boundary (issue 18): an interpreter and a source no command can change, no sockets
that reach outside, no process that outlives its call, fewer rights for root, credentials out of reach, caches
that cannot be poisoned, and a /sandbox line that claims no more than holds.

Each hole is tried through Sandbox.command and the bash tool, with a scratch HOME outside the temp folder (the
`scratch` fixture of test_sandbox.py); the ones about processes, root, reads and caches run both with a private
mount namespace and with Landlock alone (unshare refused, as in most containers and on Ubuntu 24.04)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nanocoder import sandbox
from nanocoder.agent import Agent
from nanocoder.cli import parse_args
from nanocoder.tools.base import Workspace
from nanocoder.tools.bash import BashTool
from test_sandbox import PROBE, needs_landlock, scratch  # noqa: F401 (scratch is a fixture)

# the helper with unshare(2) failing, as where namespaces are refused: Landlock alone
NO_NAMESPACE = (f"import sys; sys.path.insert(0, {str(Path(sandbox.__file__).parent)!r}); import sandbox; "
                "c = sandbox._c; sandbox._c = lambda f, *a: c('syscall', -1) if f == 'unshare' else c(f, *a); "
                "sandbox.main(sys.argv[1:])")


class LandlockAlone(sandbox.Sandbox):
    mounts = False

    def command(self, argv, policy, root, unix_sockets=False):
        helper = super().command(argv, policy, root, *((unix_sockets,) if unix_sockets else ()))
        rest = helper[helper.index("-S") + 1:]  # after python -I -S, its -c RUN CODE (before issue 18: its file)
        return [sys.executable, "-I", "-S", "-c", NO_NAMESPACE, *(rest[3:] if rest[0] == "-c" else rest[1:])]


@pytest.fixture(params=["mount namespace", "Landlock alone"])
def kind(request):
    if PROBE.support():
        pytest.skip(PROBE.support())
    if request.param == "mount namespace" and not PROBE.mounts:
        pytest.skip("no private mount namespace here")
    return request.param


def tool_in(folder, kind=None, policy="workspace-write") -> BashTool:
    workspace = Workspace(folder)
    if kind == "Landlock alone":
        workspace.sandbox = LandlockAlone()
    workspace.sandbox_policy = policy
    return BashTool(workspace)


def call(tool, command, **kwargs) -> str:
    """The text the model reads."""
    return str(tool.execute(command=command, **kwargs))


# --- 1. the interpreter and the helper's source ------------------------------------------------------------

@needs_landlock
@pytest.mark.parametrize("what", ["interpreter", "helper"])
def test_a_command_cannot_replace_what_starts_the_sandbox(scratch, monkeypatch, what):
    """nanocoder installed in a venv inside the workspace: a command replaces .venv/bin/python (or the
    package's sandbox.py); the next call must still run sandboxed."""
    home, work = scratch
    if what == "interpreter":
        venv = work / ".venv" / "bin"
        venv.mkdir(parents=True)
        (venv / "python").symlink_to(os.path.realpath(sys.executable))
        monkeypatch.setattr(sys, "executable", str(venv / "python"))
        replace = "rm .venv/bin/python && printf '#!/bin/sh\\necho pwned > ~/pwned\\n' > .venv/bin/python && " \
                  "chmod +x .venv/bin/python"
    else:
        shutil.copy(sandbox.__file__, work / "sandbox.py")
        monkeypatch.setattr(sandbox, "__file__", str(work / "sandbox.py"))
        replace = "echo \"open('$HOME/pwned', 'w').write('pwned')\" > sandbox.py"
    tool = tool_in(work)
    assert call(tool, replace) == "(no output)\n[exit code: 0]"
    assert call(tool, "echo still sandboxed; touch ~/x") .startswith("still sandboxed\ntouch: cannot touch")
    assert not (home / "pwned").exists() and not (home / "x").exists()


# --- 2. sockets: named unix sockets, UDP ------------------------------------------------------------------

def _connect(path) -> str:
    return (f"{sys.executable} -I -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{path}'); "
            "print(s.recv(100).decode())\"")


@pytest.fixture
def unix_listener(scratch):
    """A server outside the sandbox on a named unix socket (as tmux, ssh-agent or docker.sock): it greets."""
    home, work = scratch
    path = home.parent / "listener.sock"
    server = subprocess.Popen([sys.executable, "-c", (
        "import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); print(flush=True)\n"
        "while True:\n c = s.accept()[0]; c.sendall(b'hello from outside'); c.close()"), str(path)],
        stdout=subprocess.PIPE)
    server.stdout.readline()  # listening
    yield path
    os.kill(server.pid, signal.SIGKILL)
    server.wait()


@needs_landlock
def test_named_unix_sockets_are_refused_unless_allowed(scratch, unix_listener):
    home, work = scratch
    tool = tool_in(work)
    refused = call(tool, _connect(unix_listener))
    assert "hello from outside" not in refused and "Permission denied" in refused
    tool.workspace.unix_sockets = True  # --allow-unix-sockets
    assert call(tool, _connect(unix_listener)).startswith("hello from outside")
    tool.workspace.sandbox_policy = "read-only"  # never under read-only
    assert "hello from outside" not in call(tool, _connect(unix_listener))
    pair = f"{sys.executable} -I -c \"import socket; a, b = socket.socketpair(); a.send(b'pair'); print(b.recv(4))\""
    assert call(tool, pair).startswith("b'pair'")  # socketpair stays allowed


@needs_landlock
@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
def test_a_tmux_server_outside_cannot_be_reached(scratch):
    home, work = scratch
    path = home.parent / "tmux.sock"
    subprocess.run(["tmux", "-S", str(path), "new-session", "-d", "sleep 600"], check=True)
    pid = int(subprocess.run(["tmux", "-S", str(path), "display-message", "-p", "#{pid}"], check=True,
                             capture_output=True, text=True).stdout)
    try:
        result = call(tool_in(work), f"tmux -S {path} run-shell 'touch {home}/pwned'")
        assert "[exit code: 0]" not in result and not (home / "pwned").exists()
    finally:
        subprocess.run(["tmux", "-S", str(path), "kill-server"], capture_output=True)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


@needs_landlock
def test_udp_is_refused_under_read_only(scratch):
    home, work = scratch
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.setblocking(False)
        send = (f"{sys.executable} -I -c \"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                f".sendto(b'hi', ('127.0.0.1', {listener.getsockname()[1]}))\"")
        assert "Permission denied" in call(tool_in(work, policy="read-only"), send)
        with pytest.raises(BlockingIOError):
            listener.recv(10)  # nothing came
        assert call(tool_in(work), send) == "(no output)\n[exit code: 0]"  # the network is on there
        listener.setblocking(True)
        assert listener.recv(10) == b"hi"


# --- 3. no process outlives its call -----------------------------------------------------------------------

STRAYS = "setsid env -i sleep {t}1 & (sleep {t}2 &); (setsid sh -c 'sleep {t}3 & sleep {t}4' &)"


def stray(token) -> list[int]:
    """Live processes whose command line holds token."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token.encode() in Path(f"/proc/{pid}/cmdline").read_bytes() and \
                    Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
                found.append(int(pid))
        except OSError:
            pass
    return found


def wait_for(condition):
    for _ in range(600):  # not a time bound: a guard against hanging for ever
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the command did not get there")


@pytest.mark.parametrize("policy", ["workspace-write", "off"])
@pytest.mark.parametrize("end", ["its end", "a timeout", "cancel"])
def test_nothing_a_command_starts_outlives_the_call(scratch, kind, policy, end):
    """setsid, env -i, double forks, and the command's attempt at killing its helper: all end with the call."""
    home, work = scratch
    token = f"4343.{os.getpid()}{len(end)}{len(policy)}{len(kind)}"
    tool = tool_in(work, kind, policy)
    script = STRAYS.format(t=token)
    if policy != "off" and PROBE.abi >= 6:  # the helper is out of the command's reach: no signal gets there
        script += "; kill -9 $PPID"
    script += "; touch started"
    script += {"its end": "", "a timeout": "; trap '' TERM; sleep 300", "cancel": "; sleep 300"}[end]
    result = []
    thread = threading.Thread(target=lambda: result.append(call(tool, script, timeout=1 if end == "a timeout"
                                                               else 60)))
    thread.start()
    try:
        if end == "cancel":
            wait_for(lambda: (work / "started").exists() and len(stray(token)) >= 4)
            tool.cancel()
        thread.join(timeout=60)
        assert (work / "started").exists() and not thread.is_alive()
        assert stray(token) == [], result
        last = result[0].splitlines()[-1]
        assert last == {"its end": "[exit code: 0]", "a timeout": "[exit code: -9 (SIGKILL)]",
                        "cancel": "[exit code: -15 (SIGTERM)]"}[end], result
    finally:
        for pid in stray(token):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="the helper runs on Linux only")
def test_the_helper_exits_as_the_command_did_once_it_has_ended_the_rest(tmp_path):
    tool, token = tool_in(tmp_path), f"4344.{os.getpid()}"
    result = tool.execute(command=f"setsid env -i sleep {token} & echo out; echo err >&2; exit 3")
    assert result.content[0] == "out\nerr" and result.exit_code == 3
    assert call(tool, f"setsid env -i sleep {token} & kill -SEGV $$").endswith("[exit code: -11 (SIGSEGV)]")
    assert stray(token) == []


# --- 4. root ---------------------------------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="capabilities: only root has them")
def test_root_makes_no_device_nodes_and_keeps_no_needless_capabilities(scratch, kind):
    home, work = scratch
    tool = tool_in(work, kind)
    made = call(tool, "mknod null c 1 3 && ls -l null")
    assert "Operation not permitted" in made and not (work / "null").exists()
    bounding = int(call(tool, "grep CapBnd /proc/self/status").split()[1], 16)
    for cap in (27, 13, 3, 4, 31, 21):  # mknod, net_raw, fowner, fsetid, setfcap, sys_admin
        assert not bounding & (1 << cap), cap
    # a setuid-root copy of id, made in the workspace, run by another user inside: it gives no root
    ran = call(tool, "cp /usr/bin/id suid && chmod u+s suid && setpriv --reuid=65534 --regid=65534 "
                     "--clear-groups ./suid -u")
    assert ran.startswith("65534\n"), ran
    if kind == "mount namespace":  # the writable binds are nosuid, nodev
        mount = call(tool, f"x=1; grep ' {work} ' /proc/self/mountinfo").split()  # x=1: not judged read-only
        assert "nosuid" in mount[5] and "nodev" in mount[5], mount


# --- 5. reads ----------------------------------------------------------------------------------------------

CREDENTIALS = {".ssh/id_ed25519": "KEY", ".aws/credentials": "AWS-SECRET", ".gnupg/secring": "GPG-SECRET",
               ".config/gh/hosts.yml": "GH-SECRET", ".netrc": "NETRC-SECRET", ".docker/config.json": "DOCKER-SECRET",
               ".kube/config": "KUBE-SECRET", ".nanocoder/settings.json": "NANOCODER-SECRET"}


@pytest.mark.parametrize("at_home", [False, True], ids=["workspace", "workspace at HOME"])
@pytest.mark.parametrize("policy", ["read-only", "workspace-write"])
def test_credentials_cannot_be_read_but_the_rest_of_home_can(scratch, kind, policy, at_home):
    home, work = scratch
    for name, secret in CREDENTIALS.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(secret + "\n")
    (home / ".config" / "other.conf").write_text("other-config\n")
    (home / ".docker" / "daemon.json").write_text("daemon-config\n")
    tool = tool_in(home if at_home else work, kind, policy)
    result = call(tool, " ; ".join(f"cat ~/{name}" for name in CREDENTIALS) + "; cp ~/.ssh/id_ed25519 ~/.netrc .; "
                  "cat ~/notes.txt ~/docs/plan.md ~/.config/other.conf ~/.docker/daemon.json; ls ~")
    assert not [secret for secret in CREDENTIALS.values() if secret in result], result
    assert "notes\nplan\nother-config\ndaemon-config\n" in result and "docs" in result
    if not at_home:
        assert not (work / "id_ed25519").exists() and not (work / ".netrc").exists()


# --- 6. caches -------------------------------------------------------------------------------------------

def test_only_the_package_managers_caches_are_writable(scratch, kind):
    home, work = scratch
    for folder in (".cache/pip", ".cache/pre-commit", ".npm"):
        (home / folder).mkdir(parents=True)
    hook = home / ".cache" / "pre-commit" / "hook.py"
    hook.write_text("print('hook')\n")
    result = call(tool_in(work, kind), "touch ~/.cache/pip/ok ~/.npm/ok; echo 'import os' >> ~/.cache/pre-commit/hook.py;"
                                       " touch ~/.cache/new")
    assert (home / ".cache" / "pip" / "ok").exists() and (home / ".npm" / "ok").exists(), result
    assert hook.read_text() == "print('hook')\n" and not (home / ".cache" / "new").exists()


# --- 7. what /sandbox says ----------------------------------------------------------------------------------

@needs_landlock
def test_describe_claims_nothing_that_does_not_hold_here(tmp_path):
    alone = LandlockAlone().describe("workspace-write", tmp_path)
    assert "stay read-only" not in alone and "~/.ssh" in alone and "cannot read" in alone
    assert "nothing inside the writable folders is kept read-only" in alone
    if PROBE.mounts:
        assert ".git/hooks, .git/config and shell start-up files stay read-only" in \
            PROBE.describe("workspace-write", tmp_path)
    assert "open no named unix sockets" in PROBE.describe("workspace-write", tmp_path)
    assert "unix sockets" not in PROBE.describe("workspace-write", tmp_path, unix_sockets=True)
    assert "open no sockets (network or unix)" in PROBE.describe("read-only", tmp_path)


def test_allow_unix_sockets_is_a_flag_and_sub_agents_share_it(tmp_path):
    assert parse_args(["--allow-unix-sockets"]).allow_unix_sockets and not parse_args([]).allow_unix_sockets
    agent = Agent(llm=None, cwd=tmp_path)
    agent.workspace.unix_sockets = True
    assert agent.spawn().workspace.unix_sockets
