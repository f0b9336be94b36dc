"""Issue 18: nothing that the repository or a command controls runs outside the sandbox. Each hole the red team
found, end to end through the installed command with the scripted model, against a scratch HOME outside the
temp folder (tests/test_sandbox.py's `scratch`), as root and as an ordinary user for whom unshare(2) is
refused (`mode`, tests/conftest.py and tests/unprivileged.py). Each asserts that the harm did not happen."""
import contextlib
import re
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from nanocoder import sandbox
from scripted import ScriptedServer
from test_sandbox import PROBE, needs_landlock, scratch  # noqa: F401  (scratch: the fixture)


# --- the user mode itself -----------------------------------------------------------------------

def test_the_user_mode_refuses_namespaces(mode):
    """Under the wrapper unshare(2) and clone(2) with a namespace flag fail, so nanocoder finds no mount
    namespace: Landlock is all it has. As root (the control) both work."""
    clone = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
             "r = libc.syscall(56 if __import__('os').uname().machine == 'x86_64' else 220, 0x10000000 | 17, 0, 0, 0, 0); "
             "print(r if r <= 0 else 'made', ctypes.get_errno()) if r != 0 else __import__('os')._exit(0)")
    unshare = subprocess.run(["unshare", "-Ur", "true"], capture_output=True, text=True)
    made = subprocess.run([sys.executable, "-c", clone], capture_output=True, text=True)
    if mode == "root":
        assert unshare.returncode == 0 and made.stdout.startswith("made"), (unshare, made)
        return
    assert unshare.returncode != 0 and "Operation not permitted" in unshare.stderr, unshare
    assert made.stdout == "-1 1\n", made  # EPERM
    assert subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0
    assert sandbox.Sandbox().mounts is False
    assert os.geteuid() != 0 or "CapEff:\t0000000000000000" in open("/proc/self/status").read()


# --- helpers --------------------------------------------------------------------------------------

NANOCODER = Path(sys.executable).parent / "nanocoder"  # in the user mode, the user's venv's (unprivileged.py)
GIT = shutil.which("git")


@dataclass
class Ran:
    result: subprocess.CompletedProcess
    server: ScriptedServer

    def tool_results(self) -> str:
        """Every tool result any request carried (the sub-agent's included), one after the other."""
        seen = [m["content"] for r in self.server.requests for m in r.get("messages", []) if m["role"] == "tool"]
        return "\n".join(dict.fromkeys(seen))

    def everything(self) -> str:
        return self.tool_results() + self.result.stdout + self.result.stderr


def nanocoder(home, cwd, replies, *args, env=(), command=NANOCODER) -> Ran:
    """The installed command, -p, against the scripted model; a clean environment with HOME the scratch one."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OPENAI_", "NANOCODER_")) and not k.lower().endswith("_proxy")}
    with ScriptedServer(replies) as server:
        result = subprocess.run([str(command), "-p", "go", "--base-url", server.url, *args],
                                env={**clean, "HOME": str(home), "OPENAI_API_KEY": "test", **dict(env)}, cwd=cwd,
                                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    return Ran(result, server)


def calls(*commands, **tools):
    """One reply: these bash commands (and other tool calls, name=[args, ...]), as parallel calls."""
    found = [{"name": "bash", "arguments": {"command": c}} for c in commands]
    found += [{"name": name, "arguments": a} for name, several in tools.items() for a in several]
    return {"tool_calls": found}


def outside(home: Path, name: str) -> Path:
    """A marker beside HOME and the workspace: outside every folder a command may write."""
    return home.parent / name


def hostile_config(repo: Path, marker: Path, config: Path | None = None):
    """Git's lazy fetch runs remote.origin.uploadpack through a shell: a partial clone with its HEAD tree
    missing runs it on a plain `git status` (fsmonitor, hooks and filters being off does not matter)."""
    tree = subprocess.run([GIT, "-C", str(repo), "rev-parse", "HEAD^{tree}"], capture_output=True, text=True,
                          check=True).stdout.strip()
    (repo / ".git" / "objects" / tree[:2] / tree[2:]).unlink()
    for key, value in (("core.repositoryformatversion", "1"), ("extensions.partialClone", "origin"),
                       ("remote.origin.url", "/nonexistent"),
                       ("remote.origin.uploadpack", f"touch {marker}; false")):
        subprocess.run([GIT, "config", "--file", str(config or repo / ".git" / "config"), key, value], check=True)


def hostile_config_script(marker: Path) -> str:
    """The same, as a command writes it: a nested repository `sub` with a partial-clone config."""
    git = "git -c user.name=t -c user.email=t@t -c init.defaultBranch=main"
    return (f"{git} init -q sub && cd sub && echo x > f && {git} add f && {git} commit -qm x && "
            "t=$(git rev-parse HEAD^{tree}) && rm -f .git/objects/${t:0:2}/${t:2} && "
            "git config core.repositoryformatversion 1 && git config extensions.partialClone origin && "
            f"git config remote.origin.url /nonexistent && git config remote.origin.uploadpack 'touch {marker}; false'")


# --- 1. nanocoder's own git: a hostile repository runs nothing ------------------------------------

@needs_landlock
def test_opening_a_hostile_repository_runs_nothing(scratch):
    """Ask mode, no tool call: only nanocoder's own `git status` of the prompt touches the repository."""
    home, work = scratch
    marker = outside(home, "PWNED-by-uploadpack")
    hostile_config(work, marker)
    ran = nanocoder(home, work, ["Hello."])
    assert ran.result.returncode == 0, ran.result.stderr
    assert not marker.exists(), "the repository's uploadpack ran when nanocoder started"


@needs_landlock
def test_a_commondir_a_command_wrote_runs_nothing(scratch):
    """A command points .git/commondir at a config it wrote; nanocoder's next start reads it."""
    home, work = scratch
    marker = outside(home, "PWNED-by-commondir")
    head = subprocess.run([GIT, "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    plant = ("mkdir -p .evil/objects .evil/refs/heads && echo " + head + " > .evil/refs/heads/main && "
             "printf '[core]\\n\\trepositoryformatversion = 1\\n[extensions]\\n\\tpartialClone = origin\\n"
             "[remote \"origin\"]\\n\\turl = /nonexistent\\n\\tuploadpack = touch " + str(marker) + "; false\\n' "
             "> .evil/config && echo ../.evil > .git/commondir")
    planted = nanocoder(home, work, [calls(plant), "Planted."], "-y")
    assert planted.result.returncode == 0, planted.result.stderr
    ran = nanocoder(home, work, ["Hello."])  # ask mode, no tool call
    assert ran.result.returncode == 0, ran.result.stderr
    assert not marker.exists(), "a .git/commondir a command wrote made nanocoder's git run a shell"


@needs_landlock
def test_a_nested_repository_a_command_plants_runs_nothing_for_the_sub_agent(scratch):
    home, work = scratch
    marker = outside(home, "PWNED-by-nested-repo")
    ran = nanocoder(home, work, [calls(hostile_config_script(marker) + " && cd " + str(work / "sub")),
                                 {"tool_calls": [{"name": "agent", "arguments": {"task": "look around"}}]},
                                 "Nothing here.", "Done."], "-y")
    assert ran.result.returncode == 0, ran.result.stderr
    assert "[exit code: 0]" in ran.tool_results() and len(ran.server.requests) == 4  # planted; the sub-agent ran
    assert not marker.exists(), "the sub-agent's git ran the nested repository's uploadpack"


# --- 2. a git planted on PATH -----------------------------------------------------------------------

@needs_landlock
def test_a_git_planted_in_a_workspace_folder_on_path_never_runs_for_nanocoder(scratch):
    home, work = scratch
    marker = outside(home, "PWNED-by-planted-git")
    (work / ".venv" / "bin").mkdir(parents=True)  # an activated venv: first on PATH
    path = {"PATH": f"{work / '.venv' / 'bin'}:{os.environ['PATH']}"}
    plant = (f"printf '#!/bin/sh\\ntouch {marker}\\nexec {GIT} \"$@\"\\n' > .venv/bin/git && "
             "chmod +x .venv/bin/git")
    ran = nanocoder(home, work, [calls(plant), {"tool_calls": [{"name": "agent", "arguments": {"task": "look"}}]},
                                 "Nothing.", "Done."], "-y", env=path)
    assert ran.result.returncode == 0, ran.result.stderr
    assert (work / ".venv" / "bin" / "git").exists()  # the command may plant it (the workspace is writable)
    assert not marker.exists(), "the sub-agent's environment ran the planted git"
    again = nanocoder(home, work, ["Hello."], env=path)  # the next start: its git status
    assert again.result.returncode == 0, again.result.stderr
    assert not marker.exists(), "nanocoder's start ran the planted git"


# --- 3. the interpreter -----------------------------------------------------------------------------

def venv_in(work: Path) -> Path:
    """nanocoder installed in a venv inside the workspace, cheaply: a venv of this interpreter whose
    site-packages sees the running one's (a .pth), and the `nanocoder` entry script beside its python."""
    venv = work / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    sites = [p for p in sys.path if p.endswith("-packages") and os.path.isdir(p)]
    Path(site, "nanocoder-tests.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in sites))
    script = NANOCODER.read_text().split("\n", 1)[1]
    (venv / "bin" / "nanocoder").write_text(f"#!{venv / 'bin' / 'python'}\n{script}")
    (venv / "bin" / "nanocoder").chmod(0o755)
    return venv


@needs_landlock
def test_a_replaced_venv_python_does_not_unsandbox_the_next_command(scratch):
    home, work = scratch
    venv, marker = venv_in(work), outside(home, "PWNED-by-replaced-python")
    real = os.path.realpath(venv / "bin" / "python")
    hijack = (f"#!/bin/sh\ntouch {marker}\nfor a; do [ \"$a\" = -- ] && found=1; done\n"  # the helper's command,
              "if [ \"$found\" ]; then while [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\"; fi\n"  # run bare
              f"exec {real} \"$@\"\n")  # anything else: python as it was
    replace = f"rm .venv/bin/python && cat > .venv/bin/python << 'EOF'\n{hijack}EOF\nchmod +x .venv/bin/python"
    path = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    ran = nanocoder(home, work, [calls(replace), calls("touch ~/escaped"), "Done."], "-y", env=path,
                    command=venv / "bin" / "nanocoder")
    assert ran.result.returncode == 0, ran.result.stderr
    assert "exec " in (venv / "bin" / "python").read_text()  # the command could replace it
    assert not (home / "escaped").exists(), "the command after the replacement ran unsandboxed"
    assert not marker.exists(), "nanocoder ran the replaced interpreter"


# --- 4. named unix sockets --------------------------------------------------------------------------

@contextlib.contextmanager
def tmux_server(folder: Path):
    """A tmux server of this user's (no config), on a socket in `folder`; stopped by its PID."""
    sock = folder / "tmux.sock"
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    subprocess.run(["tmux", "-f", "/dev/null", "-S", str(sock), "new-session", "-d"], env=env, check=True)
    pid = int(subprocess.run(["tmux", "-S", str(sock), "display-message", "-p", "#{pid}"], env=env, check=True,
                             capture_output=True, text=True).stdout)
    try:
        yield sock
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


needs_tmux = pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")


@needs_landlock
@needs_tmux
def test_a_command_cannot_reach_a_tmux_server(scratch):
    home, work = scratch
    marker = outside(home, "PWNED-by-tmux")
    with tmux_server(home.parent) as sock:
        ran = nanocoder(home, work, [calls(f"tmux -S {sock} run-shell 'touch {marker}'"), "Done."], "-y")
    assert ran.result.returncode == 0, ran.result.stderr
    assert not marker.exists(), "a sandboxed command had the user's tmux server run a shell"


@needs_landlock
@needs_tmux
def test_a_git_status_judged_read_only_cannot_reach_tmux_through_fsmonitor(scratch):
    """Ask mode: `git status` runs without asking (judged read-only), and the repository's fsmonitor with it."""
    home, work = scratch
    marker = outside(home, "PWNED-by-fsmonitor")
    with tmux_server(home.parent) as sock:
        monitor = work / "monitor.sh"
        monitor.write_text(f"#!/bin/sh\ntmux -S {sock} run-shell 'touch {marker}'\n")
        monitor.chmod(0o755)
        subprocess.run([GIT, "-C", str(work), "config", "core.fsmonitor", str(monitor)], check=True)
        ran = nanocoder(home, work, [calls("git status"), "Done."])
    assert ran.result.returncode == 0, ran.result.stderr
    assert "judged read-only" in ran.tool_results() or "[exit code: 0]" in ran.tool_results()  # it ran
    assert not marker.exists(), "the fsmonitor of a read-only `git status` reached tmux"


@needs_landlock
def test_a_command_cannot_connect_to_a_unix_socket_outside(scratch):
    home, work = scratch
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(home.parent / "listener.sock"))
        listener.listen()
        listener.setblocking(False)
        connect = (f"python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); "
                   f"s.connect('{home.parent / 'listener.sock'}'); s.sendall(b'hello')\"")
        pair = "python3 -c \"import socket; a, b = socket.socketpair(); a.send(b'p'); print(b.recv(1) + b'air ok')\""
        ran = nanocoder(home, work, [calls(connect, pair), "Done."], "-y")
        assert ran.result.returncode == 0, ran.result.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody called
    assert "pair ok" in ran.tool_results()  # socketpair stays allowed


@needs_landlock
def test_variables_pointing_at_sockets_are_not_passed_on(scratch):
    home, work = scratch
    sockets = {"SSH_AUTH_SOCK": str(home.parent / "agent.sock"),
               "DBUS_SESSION_BUS_ADDRESS": f"unix:path={home.parent / 'bus'}", "TMUX": "/tmp/tmux-1/default,1,0"}
    ran = nanocoder(home, work, [calls("env"), "Done."], "-y", env=sockets)
    assert ran.result.returncode == 0, ran.result.stderr
    assert "HOME=" in ran.tool_results()
    for name in sockets:
        assert f"{name}=" not in ran.tool_results(), name


# --- 5. UDP under read-only -------------------------------------------------------------------------

@needs_landlock
def test_read_only_sends_no_udp(scratch):
    home, work = scratch
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.setblocking(False)
        port = listener.getsockname()[1]
        send = f"python3 -c \"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', {port}))\""
        ran = nanocoder(home, work, [calls(send, f"echo x > /dev/udp/127.0.0.1/{port}"), "Done."], "-y",
                        "--sandbox", "read-only")
        assert ran.result.returncode == 0, ran.result.stderr
        with pytest.raises(BlockingIOError):
            listener.recvfrom(10)  # nothing came


# --- 6. stray processes -----------------------------------------------------------------------------

def sleepers(arg: str) -> list[int]:
    """This user's processes whose command line holds `arg` as a word (setsid, env or sleep)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if arg.encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") and \
                    os.stat(f"/proc/{pid}").st_uid == os.getuid():
                found.append(int(pid))
    return found


@needs_landlock
def test_a_process_that_leaves_the_group_and_clears_its_environment_ends_with_the_call(scratch):
    home, work = scratch
    try:
        # it waits until the sleep runs: out of the group, its environment gone (and no race with the call's end)
        escape = "setsid env -i sleep 4343 & until [ \"$(cat /proc/$!/comm)\" = sleep ]; do :; done"
        ran = nanocoder(home, work, [calls(escape), "Done."], "-y")
        assert ran.result.returncode == 0, ran.result.stderr
        assert sleepers("4343") == [], "`setsid env -i sleep 4343 &` outlived its call"
    finally:
        for pid in sleepers("4343"):
            os.kill(pid, signal.SIGKILL)


# --- 7. file tools under -y -------------------------------------------------------------------------

@needs_landlock
def test_yes_does_not_let_file_tools_write_start_up_files_or_nanocoder_settings(scratch):
    home, work = scratch
    (home / ".nanocoder").mkdir()
    (home / ".nanocoder" / "settings.json").write_text('{"model": "m"}\n')
    (home / ".bash_aliases").write_text("alias ll='ls -l'\n")
    hooks = '{"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "touch ~/pwned"}]}]}}'
    before = {p: p.read_bytes() for p in (home / ".nanocoder" / "settings.json", home / ".bash_aliases")}
    ran = nanocoder(home, work, [
        calls(read_file=[{"file_path": "~/.nanocoder/settings.json"}, {"file_path": "~/.bash_aliases"}]),
        calls(write_file=[{"file_path": str(home / ".nanocoder" / "settings.json"), "content": hooks},
                          {"file_path": str(home / ".config" / "fish" / "conf.d" / "x.fish"), "content": "touch ~/pwned\n"}],
              edit_file=[{"file_path": str(home / ".bash_aliases"), "old_string": "ls -l",
                          "new_string": "ls -l; touch ~/pwned"}]),
        "Done."], "-y")
    assert ran.result.returncode == 0, ran.result.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert not (home / ".config" / "fish" / "conf.d" / "x.fish").exists()


# --- 8. secrets under other names --------------------------------------------------------------------

@needs_landlock
def test_secrets_under_other_names_do_not_reach_commands(scratch):
    home, work = scratch
    secrets = {"MYSQL_PWD": "mysql-pw-1", "GH_PAT": "ghp_pat2", "DATABASE_URL": "postgres://u:pw-db-3@h/db",
               "REDIS_URL": "redis://:redis-pw-4@cache:6379/0"}
    ran = nanocoder(home, work, [calls("env"), "Done."], "-y", env={**secrets, "PLAIN": "plain-5"})
    assert ran.result.returncode == 0, ran.result.stderr
    assert "PLAIN=plain-5" in ran.tool_results()
    for name, value in secrets.items():
        secret = value.split(":")[-1].split("@")[0] if "://" in value else value
        assert secret not in ran.everything(), name


# --- 9. reads -------------------------------------------------------------------------------------

CREDENTIALS = {".ssh/id_rsa": "ssh-secret", ".aws/credentials": "aws-secret", ".gnupg/private.key": "gpg-secret",
               ".config/gh/hosts.yml": "gh-secret", ".netrc": "netrc-secret", ".docker/config.json": "docker-secret",
               ".kube/config": "kube-secret", ".nanocoder/settings.json": '{"secret": "nanocoder-secret"}'}


@needs_landlock
def test_commands_cannot_read_credentials(scratch):
    home, work = scratch
    for name, secret in CREDENTIALS.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(f"{secret}\n")
    reads = [f"cat ~/{name}" for name in CREDENTIALS]
    ran = nanocoder(home, work, [calls("cp ~/.ssh/id_rsa stolen", *reads, "cat ~/notes.txt"), "Done."], "-y")
    assert ran.result.returncode == 0, ran.result.stderr
    assert "notes" in ran.tool_results()  # the rest of HOME still reads
    assert not (work / "stolen").exists(), "~/.ssh/id_rsa was copied into the workspace"
    for name, secret in CREDENTIALS.items():
        assert secret.strip('{}"').split('"')[-1] not in ran.everything(), name


# --- 10. what a command writes that later runs code ------------------------------------------------

@needs_landlock
def test_a_missing_git_hooks_folder_cannot_be_made_with_a_hook(scratch):
    home, work = scratch
    shutil.rmtree(work / ".git" / "hooks")
    marker = outside(home, "PWNED-by-new-hook")
    plant = (f"mkdir -p .git/hooks && printf '#!/bin/sh\\ntouch {marker}\\n' > .git/hooks/pre-commit && "
             "chmod +x .git/hooks/pre-commit")
    ran = nanocoder(home, work, [calls(plant), "Done."], "-y")
    assert ran.result.returncode == 0, ran.result.stderr
    subprocess.run([GIT, "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-m", "the user commits"], capture_output=True)
    assert not marker.exists(), "a hook a command put in a new .git/hooks ran at the user's commit"


@needs_landlock
def test_tool_caches_other_than_package_managers_stay_read_only(scratch):
    home, work = scratch
    hook = home / ".cache" / "pre-commit" / "repo1234" / "hook.py"
    hook.parent.mkdir(parents=True)
    hook.write_text("print('lint')\n")
    (home / ".cache" / "pip").mkdir()
    ran = nanocoder(home, work, [calls(f"echo 'import os; os.system(\"touch ~/pwned\")' >> {hook}",
                                       "touch ~/.cache/pip/fine"), "Done."], "-y")
    assert ran.result.returncode == 0, ran.result.stderr
    assert hook.read_text() == "print('lint')\n", "pre-commit's cached hook was rewritten"
    assert (home / ".cache" / "pip" / "fine").exists()  # pip's own cache stays writable


@needs_landlock
def test_git_hooks_and_config_stay_as_they_were_after_a_command(scratch):
    """With a mount namespace they are read-only; with Landlock alone they must be put back after the call."""
    home, work = scratch
    config, hooks = (work / ".git" / "config").read_bytes(), sorted(os.listdir(work / ".git" / "hooks"))
    marker = outside(home, "PWNED-by-hook")
    plant = (f"echo '[core]' >> .git/config; echo '  fsmonitor = touch {marker}' >> .git/config; "
             f"printf '#!/bin/sh\\ntouch {marker}\\n' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit")
    ran = nanocoder(home, work, [calls(plant), "Done."], "-y")
    assert ran.result.returncode == 0, ran.result.stderr
    assert (work / ".git" / "config").read_bytes() == config and sorted(os.listdir(work / ".git" / "hooks")) == hooks


# --- 10 (cont.). what /sandbox says holds ---------------------------------------------------------------

CLAIMS = {".git/hooks": lambda home: (home / ".git" / "hooks" / "pre-commit").exists(),
          ".git/config": lambda home: "planted" in (home / ".git" / "config").read_text(),
          "~/.ssh": lambda home: (home / ".ssh" / "planted").exists(),
          "start-up files": lambda home: "planted" in (home / ".bashrc").read_text()}
NOT = ("not", "nor", "no", "never", "cannot", "unprotected", "writable")


@needs_landlock
def test_the_sandbox_line_claims_only_what_holds(scratch):
    """The REPL in HOME (a dotfiles repo): `/sandbox`, then a `!command` writes each thing the line may claim
    is kept. A clause naming one of them, without a negation, is a claim; each claim must have held."""
    import pexpect
    home, work = scratch
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_"))}
    env.update(HOME=str(home), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", NO_COLOR="1")
    child = pexpect.spawn(str(NANOCODER), ["--base-url", "http://127.0.0.1:9/v1", "--api-key", "test"], env=env,
                          cwd=str(home), encoding="utf-8", timeout=20, dimensions=(50, 400))
    try:
        child.expect_exact("›")
        child.sendline("/sandbox")
        child.expect(r"sandbox workspace-write[\s\S]*?›")
        line = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.after)
        child.sendline("!touch ~/.ssh/planted; echo '# planted' >> ~/.bashrc; echo '# planted' >> .git/config; "
                       "printf '#!/bin/sh\\n' > .git/hooks/pre-commit; echo DO''NE")
        child.expect_exact("DONE")
        child.expect_exact("›")
    finally:
        child.close(force=True)
    assert "sandbox workspace-write" in line, line
    clauses = [c for c in re.split(r"[;:]", " ".join(line.split())) if c.strip()]
    for name, changed in CLAIMS.items():
        claimed = [c for c in clauses if name in c and not set(NOT) & set(re.findall(r"[a-z]+", c.lower()))]
        assert not (claimed and changed(home)), f"the line says {claimed[0]!r}, yet a command changed {name}"


# --- 11. root's capabilities and mounts ----------------------------------------------------------------

CAPS = {"CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_NET_RAW": 13, "CAP_MKNOD": 27}


@needs_landlock
@pytest.mark.parametrize("mode", ["root"], indirect=True)
def test_root_commands_make_no_devices_setuid_binaries_or_raw_sockets(scratch):
    home, work = scratch
    flags = "python3 -c \"import os; print('FLAGS', os.statvfs('.').f_flag)\""
    raw = "python3 -c \"import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print('RAW ' 'MADE')\""
    ran = nanocoder(home, work, [calls("mknod disk b 8 0", "cp /bin/true suid && chmod u+s suid", flags, raw,
                                       "grep -E 'Cap(Eff|Bnd)' /proc/self/status"), "Done."], "-y")
    assert ran.result.returncode == 0, ran.result.stderr
    results = ran.tool_results()
    assert not (work / "disk").exists() or not stat.S_ISBLK((work / "disk").lstat().st_mode), "a block device was made"
    nosuid = int(re.search(r"FLAGS (\d+)", results).group(1)) & os.ST_NOSUID
    assert nosuid or not (work / "suid").stat().st_mode & stat.S_ISUID, "a setuid-root binary on a suid mount"
    assert int(re.search(r"FLAGS (\d+)", results).group(1)) & os.ST_NODEV, "the workspace is not mounted nodev"
    assert "RAW MADE" not in results, "a raw socket was made"
    for line in re.findall(r"Cap(?:Eff|Bnd):\s+([0-9a-f]+)", results):
        kept = [name for name, bit in CAPS.items() if int(line, 16) & (1 << bit)]
        assert kept == [], kept


# --- the guards that hold today: keep them green --------------------------------------------------------

@needs_landlock
def test_the_guards_hold(scratch):
    """Writes through /proc/$PPID/cwd and /proc/*/root, ptrace and /proc/$PPID/mem of nanocoder, signals to
    it, symlinks and hard links into HOME, `unshare -Urm` remounts, the key from /proc/$PPID/environ."""
    home, work = scratch
    before = (home / "notes.txt").read_text()
    # $PPID (bash's parent, nanocoder) expanded by bash; PTRACE_SEIZE: were it allowed, nanocoder would not stop
    attach = ("python3 -c \"import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
              "print('ATTACHED' if libc.ptrace(0x4206, $PPID, 0, 0) == 0 else 'no')\"")
    mem = "python3 -c \"f = open('/proc/$PPID/mem', 'rb'); print('MEM', 'READ')\""
    guards = ["touch /proc/$PPID/cwd/../escaped-cwd", "for p in /proc/[0-9]*; do touch $p/root$HOME/escaped-root; done",
              attach, mem, "kill -WINCH $PPID && echo SIG''NALLED", "ln -s ~ homelink && touch homelink/escaped-link",
              "ln ~/notes.txt hardlink && echo x >> hardlink",
              "unshare -Urm sh -c 'mount -o remount,rw / ; mount -o remount,rw $HOME; touch ~/escaped-unshare'",
              "tr '\\0' '\\n' < /proc/$PPID/environ | grep OPENAI_API_KEY"]
    ran = nanocoder(home, work, [calls(*guards), "Done."], "-y", env={"OPENAI_API_KEY": "sk-guard-key-7"})
    assert ran.result.returncode == 0, ran.result.stderr
    results = ran.tool_results()
    assert [p.name for folder in (home.parent, work.parent) for p in folder.iterdir() if "escaped" in p.name] == []
    assert [p.name for p in home.iterdir() if p.name.startswith("escaped")] == []
    assert (home / "notes.txt").read_text() == before
    for word in ("ATTACHED", "MEM READ", "SIGNALLED", "sk-guard-key-7"):
        assert word not in results, word
