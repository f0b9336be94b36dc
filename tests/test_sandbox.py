"""The kernel sandbox (nanocoder/sandbox.py): the helper run directly, the bash tool, and the installed
command with --yes against destructive spellings the analysis lets through.

Scratch folders live beside the checkout, never under the temp folder: the workspace-write policy lets
commands write there, so a HOME under /tmp would prove nothing.
"""
import contextlib
import hashlib
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from nanocoder import sandbox
from scripted import ScriptedServer
from nanocoder.tools.base import Workspace
from nanocoder.tools.bash import BashTool
from nanocoder.tools.shell import FORBIDDEN, READ_ONLY, classify

NANOCODER = Path(sys.executable).parent / "nanocoder"
PROBE = sandbox.Sandbox()
needs_landlock = pytest.mark.skipif(bool(PROBE.support()), reason=PROBE.support() or "")
needs_mounts = pytest.mark.skipif(bool(PROBE.support()) or not PROBE.mounts,
                                  reason="no private mount namespace here: .git is not protected")


def scratch_parent() -> Path:
    """A writable folder outside the temp folder (which commands may write: a scratch HOME there proves
    nothing): beside the checkout, else the user's home from the password database (a test may have
    pointed HOME elsewhere). In CI, where both exist, not finding one is a failure, never a quiet skip."""
    temp = Path(tempfile.gettempdir()).resolve()
    candidates = (Path(__file__).resolve().parents[2], Path(pwd.getpwuid(os.getuid()).pw_dir).resolve())
    usable = [p for p in candidates if os.access(p, os.W_OK) and not p.is_relative_to(temp)]
    if not usable:
        why = "no writable folder outside the temp folder for a scratch HOME"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return usable[0]


@pytest.fixture
def scratch(monkeypatch, mode):
    """HOME (a dotfiles repo with SSH keys and start-up files) and projects/work (a git repository, the
    workspace) beside projects/sibling, in a folder beside the checkout; HOME is pointed there. Every test
    using it runs twice (`mode`, tests/conftest.py): as root, and as an ordinary user with unshare(2) refused,
    whose scratch HOME lies in the user's own home."""
    top = Path(tempfile.mkdtemp(prefix="nanocoder-sandbox-test-", dir=scratch_parent()))
    home, work, sibling = top / "home", top / "projects" / "work", top / "projects" / "sibling"
    for folder in (home / ".ssh", home / "docs", work, sibling):
        folder.mkdir(parents=True)
    for path, text in {home / ".bashrc": "alias ll=ls\n", home / ".profile": "umask 022\n",
                       home / ".ssh" / "id_ed25519": "KEY\n", home / "notes.txt": "notes\n",
                       home / "docs" / "plan.md": "plan\n", sibling / "notes.txt": "mine\n",
                       work / "f.txt": "hello\n"}.items():
        path.write_text(text)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    for repo, files in ((home, [".bashrc"]), (work, ["f.txt"])):
        subprocess.run(git + ["init", "-q", str(repo)], check=True)
        subprocess.run(git + ["-C", str(repo), "add", *files], check=True)
        subprocess.run(git + ["-C", str(repo), "commit", "-qm", "first"], check=True)
    monkeypatch.setenv("HOME", str(home))
    yield home, work
    shutil.rmtree(top)


def snapshot(folder: Path, skip=()) -> dict:
    """Every name under folder with its mode, owner, time and content's hash (a link's target)."""
    seen = {}
    for path in [folder, *folder.rglob("*")]:
        name = str(path.relative_to(folder))
        if name.split(os.sep)[0] in skip:
            continue
        st = path.lstat()
        body = os.readlink(path) if path.is_symlink() else \
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        seen[name] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, body)
    return seen


def denied(result) -> bool:
    """Landlock says "Permission denied"; the read-only mounts, where they could be made, "Read-only file
    system" (for chmod, chown and times too, which Landlock leaves alone)."""
    return result.returncode != 0 and ("Permission denied" in result.stderr or "Read-only file" in result.stderr)


def run(policy, script, root, cwd=None):
    argv = PROBE.command(["bash", "-c", script], policy, str(root))
    return subprocess.run(argv, cwd=cwd or root, capture_output=True, text=True, timeout=30, pass_fds=PROBE.fds)


# --- the helper, run directly ------------------------------------------------------------------

@needs_landlock
def test_read_only_denies_writes_deletes_and_redirections(scratch):
    home, work = scratch
    before = snapshot(work)
    for script in ("touch new", "echo x > f.txt", "echo x >> f.txt", "rm f.txt", "mkdir d", "ln -s f.txt l",
                   "mv f.txt g.txt", "truncate -s0 f.txt", "touch ~/new", f"touch {tempfile.gettempdir()}/x"):
        assert denied(run("read-only", script, work)), script
    assert snapshot(work) == before
    assert run("read-only", "echo fine > /dev/null", work).returncode == 0


@needs_landlock
def test_read_only_still_reads(scratch):
    home, work = scratch
    result = run("read-only", "ls; cat f.txt; grep -r hello .; git status --short; git log --oneline | wc -l",
                 work)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "f.txt\nhello\n./f.txt:hello\n1\n"


@needs_landlock
@pytest.mark.skipif(PROBE.abi < 4, reason="Landlock ABI < 4 cannot restrict TCP")
def test_read_only_denies_tcp_connect_workspace_write_allows_it(scratch):
    home, work = scratch
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        script = f"echo hi > /dev/tcp/127.0.0.1/{listener.getsockname()[1]}"
        refused = run("read-only", script, work)
        assert refused.returncode != 0 and "Permission denied" in refused.stderr
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody called
        assert run("workspace-write", script, work).returncode == 0
        listener.accept()[0].close()


@needs_landlock
@pytest.mark.skipif(PROBE.abi < 6, reason="Landlock ABI < 6 cannot scope signals")
def test_commands_cannot_signal_processes_outside(scratch):
    home, work = scratch
    outside = subprocess.Popen(["sleep", "30"])
    try:
        for policy in ("read-only", "workspace-write"):
            result = run(policy, f"kill {outside.pid}", work)
            assert result.returncode != 0 and "Operation not permitted" in result.stderr
        assert outside.poll() is None
        assert run("read-only", "sleep 30 & kill $! && wait $!; echo $?", work).stdout == "143\n"  # its own
    finally:
        outside.kill()
        outside.wait()


@needs_landlock
def test_workspace_write_writes_the_workspace_and_temp_but_not_home(scratch):
    home, work = scratch
    temp = Path(tempfile.mkdtemp())
    try:
        result = run("workspace-write", f"touch made && mkdir sub && echo x > {temp}/t && rm f.txt", work)
        assert result.returncode == 0, result.stderr
        assert (work / "made").exists() and (work / "sub").is_dir() and (temp / "t").exists()
    finally:
        shutil.rmtree(temp)
    before = snapshot(home)
    for script in ("touch ~/new", "echo x >> ~/.bashrc", "rm -rf ~/.ssh", "mv ~/notes.txt ~/n", "mkdir ~/d",
                   "rm -f ../sibling/notes.txt", "touch ../new"):
        assert denied(run("workspace-write", script, work)), script
    assert snapshot(home) == before and sorted(os.listdir(work.parent)) == ["sibling", "work"]


@needs_mounts
def test_outside_the_writable_folders_not_even_modes_owners_or_times_change(scratch):
    home, work = scratch
    before = snapshot(home)
    for policy, script in (("read-only", "chmod 000 f.txt"), ("read-only", "touch -d 2001-01-01 f.txt"),
                           ("workspace-write", "chmod -R 000 ~"), ("workspace-write", "chown -R 1:1 ~/.ssh"),
                           ("workspace-write", "touch -d 2001-01-01 ~/.bashrc"),
                           ("workspace-write", "python3 -c \"import os; os.setxattr(os.path.expanduser("
                                               "'~/.bashrc'), 'user.x', b'1')\"")):
        assert denied(run(policy, script, work)), script
    assert snapshot(home) == before and stat.S_IMODE((work / "f.txt").stat().st_mode) == 0o644


@needs_mounts
@pytest.mark.skipif(os.geteuid() != 0, reason="only root could undo a mount")
def test_root_cannot_undo_the_read_only_mounts(scratch):
    """mount_setattr(2) is not one of the calls Landlock stops: without CAP_SYS_ADMIN it fails."""
    home, work = scratch
    clear_read_only = ("import ctypes, struct; libc = ctypes.CDLL(None, use_errno=True); "
                       "print(libc.syscall(442, -100, b'.git/hooks', 0x8000, struct.pack('=4Q', 0, 1, 0, 0), 32))")
    result = run("workspace-write", f"{sys.executable} -I -c \"{clear_read_only}\"; touch .git/hooks/pre-commit",
                 work)
    assert result.stdout == "-1\n" and denied(result) and not (work / ".git" / "hooks" / "pre-commit").exists()
    capabilities = run("workspace-write", "grep CapBnd /proc/self/status", work).stdout.split()[1]
    assert not int(capabilities, 16) & (1 << 21)  # CAP_SYS_ADMIN


@needs_mounts
def test_workspace_write_keeps_git_hooks_and_config_and_git_itself(scratch):
    home, work = scratch
    hooks, config = snapshot(work / ".git" / "hooks"), (work / ".git" / "config").read_bytes()
    for script, error in (("echo x > .git/hooks/pre-commit", "Read-only file system"),
                          ("echo '[core] fsmonitor = x' >> .git/config", "Read-only file system"),
                          ("git config core.fsmonitor 'touch pwned'", "resource busy"),
                          ("rm -rf .git/hooks", "Read-only file system"), ("mv .git x", "resource busy"),
                          ("mv .git/config c", "resource busy"), ("cd .git/hooks && touch pre-push", "Read-only")):
        result = run("workspace-write", script, work)
        assert result.returncode != 0 and error in result.stderr, (script, result.stderr)
    commit = "touch new.txt && git add new.txt && git -c user.name=t -c user.email=t@t commit -qm second"
    assert run("workspace-write", commit, work).returncode == 0  # git itself still works
    assert snapshot(work / ".git" / "hooks") == hooks and (work / ".git" / "config").read_bytes() == config
    inside = run("workspace-write", "touch pre-commit", work, cwd=work / ".git" / "hooks")  # cwd under the mount
    assert inside.returncode != 0 and not (work / ".git" / "hooks" / "pre-commit").exists()


@needs_mounts
def test_workspace_at_home_keeps_ssh_and_start_up_files(scratch):
    home, work = scratch
    result = run("workspace-write", "touch ~/made", home)
    assert result.returncode == 0 and (home / "made").exists()
    for script in ("echo x >> ~/.bashrc", "rm ~/.profile", "rm -rf ~/.ssh", "touch ~/.ssh/new", "mv ~/.ssh ~/s"):
        result = run("workspace-write", script, home)
        assert result.returncode != 0, script
    assert (home / ".bashrc").read_text() == "alias ll=ls\n" and (home / ".profile").exists()
    assert os.listdir(home / ".ssh") == ["id_ed25519"]


@needs_mounts
def test_a_git_file_cannot_be_pointed_elsewhere(scratch):
    home, work = scratch
    linked = work.parent / "linked"
    subprocess.run(["git", "-C", str(work), "worktree", "add", "-q", str(linked)], check=True)
    pointer = (linked / ".git").read_text()
    for script in ("echo 'gitdir: /elsewhere' > .git", "rm .git", "mv .git g"):
        assert run("workspace-write", script, linked).returncode != 0, script
    assert (linked / ".git").read_text() == pointer


@needs_landlock
def test_without_a_mount_namespace_landlock_alone_still_holds(scratch):
    """As in a container that forbids namespaces (here unshare fails with ENOSYS): writes are denied, modes
    are not, .git is not kept (describe says so)."""
    home, work = scratch
    no_namespace = (f"import sys; sys.path.insert(0, {str(Path(sandbox.__file__).parent)!r}); import sandbox; "
                    "c = sandbox._c; sandbox._c = lambda f, *a: c('syscall', -1) if f == 'unshare' else c(f, *a)"
                    "; sandbox.main(sys.argv[1:])")
    helper_args = PROBE.command(["bash", "-c"], "workspace-write", work)[6:]  # after python -I -S -c RUN CODE
    argv = [sys.executable, "-I", "-S", "-c", no_namespace, *helper_args]
    result = subprocess.run(argv + ["touch ~/x; echo x >> .git/config; chmod 600 ~/notes.txt"], cwd=work,
                            capture_output=True, text=True)
    assert "Permission denied" in result.stderr and not (home / "x").exists()
    assert (work / ".git" / "config").read_text().endswith("x\n")  # not protected without the mounts
    assert stat.S_IMODE((home / "notes.txt").stat().st_mode) == 0o600


def test_a_failing_helper_never_runs_the_command(scratch):
    home, work = scratch
    for args in (["bogus", "--", "touch", "ran"], ["read-only", "touch", "ran"], []):
        result = subprocess.run([sys.executable, "-I", "-S", sandbox.__file__, *args], cwd=work,
                                capture_output=True, text=True)
        assert result.returncode == 126 and result.stderr.startswith("nanocoder sandbox: ")
        assert len(result.stderr.splitlines()) == 1 and not (work / "ran").exists()


def test_off_and_unsupported_run_the_command_under_the_helper_only_as_subreaper(tmp_path):
    helper = PROBE.command(["true"], "off", tmp_path)
    assert helper[-3:] == ["off", "--", "true"] if sys.platform == "linux" else helper == ["true"]
    unsupported = sandbox.Sandbox()
    unsupported._landlock = (0, "Landlock is blocked here (test)")  # as a kernel without it would answer
    assert unsupported.command(["true"], "workspace-write", tmp_path)[-3:] == helper[-3:]
    assert unsupported.describe("workspace-write", tmp_path) == unsupported.support() == \
        "no sandbox: Landlock is blocked here (test); commands run with your full rights"


# --- the bash tool -----------------------------------------------------------------------------

@needs_landlock
def test_a_denied_write_says_so_and_offers_a_rerun_outside(scratch):
    """The helper cannot see a command's EACCES: every failure in the sandbox says where it ran and offers a
    rerun outside; the words the command printed decide nothing."""
    home, work = scratch
    tool = BashTool(Workspace(work))
    denied = tool.execute(command="touch ~/made")
    text = str(denied)
    assert ("Permission denied" in text or "Read-only file system" in text) and denied.exit_code == 1
    assert "[It ran in the sandbox, which may be why it failed" in text and f"write only in {work}" in text
    assert text.endswith("[exit code: 1]") and denied.sandbox == "workspace-write" and not denied.is_error
    assert "touch ~/made" in denied.question and "failed in the sandbox" in denied.question
    assert not (home / "made").exists()
    again = denied.rerun()
    assert str(again) == "(no output)\n[exit code: 0]" and again.sandbox == "off"
    assert (home / "made").exists()
    quiet = tool.execute(command="touch ~/quiet 2>/dev/null")  # no words at all: offered the same
    assert quiet.exit_code == 1 and quiet.rerun is not None and not (home / "quiet").exists()


@needs_landlock
def test_read_only_policy_and_judged_read_only_commands(scratch):
    home, work = scratch
    workspace = Workspace(work)
    tool = BashTool(workspace)
    assert classify("cat f.txt", work)[0] == READ_ONLY
    with socket.socket() as listener:  # judged read-only, so run read-only: no TCP
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        script = f"cat < /dev/tcp/127.0.0.1/{listener.getsockname()[1]}"
        assert classify(script, work)[0] == READ_ONLY
        result = tool.execute(command=script)
        assert re.search(r"judged read-only\), which may be why it failed: sandbox read-only", str(result))
        assert result.rerun is None  # one judged read-only fails for reasons of its own (grep finds nothing)
    workspace.sandbox_policy = "read-only"
    result = tool.execute(command="touch made")
    assert "sandbox read-only" in str(result) and result.rerun is not None
    workspace.sandbox_policy = "off"
    assert str(tool.execute(command="touch made")) == "(no output)\n[exit code: 0]"
    assert (work / "made").exists()


@needs_landlock
def test_cd_carries_over_under_read_only_without_temp_files(scratch):
    home, work = scratch
    (work / "sub").mkdir()
    workspace = Workspace(work)
    tool = BashTool(workspace)
    leftovers = set(Path(tempfile.gettempdir()).glob("nanocoder-cwd-*"))
    assert classify("cd sub", work)[0] == READ_ONLY
    tool.execute(command="cd sub")
    assert workspace.cwd == work / "sub"
    workspace.sandbox_policy = "read-only"
    assert tool.execute(command="cd .. && touch x").exit_code == 1
    assert workspace.cwd == work and not (work / "x").exists()
    assert set(Path(tempfile.gettempdir()).glob("nanocoder-cwd-*")) == leftovers


def test_cd_carries_over_while_a_background_process_holds_the_pipe(tmp_path):
    (tmp_path / "sub").mkdir()
    workspace = Workspace(tmp_path)
    done = []
    call = threading.Thread(target=lambda: done.append(str(BashTool(workspace).execute(
        command="sleep 30 >/dev/null 2>&1 & echo $! > pid; cd sub"))))
    call.start()
    call.join(timeout=20)
    try:
        assert done == ["(no output)\n[exit code: 0]"] and workspace.cwd == tmp_path / "sub"
    finally:
        with contextlib.suppress(ProcessLookupError):  # it ends with the call now (issue 11)
            os.kill(int((tmp_path / "pid").read_text()), 9)


def test_secrets_are_kept_out_of_commands(tmp_path, monkeypatch):
    secrets = {"OPENAI_API_KEY": "sk-test-1", "GITHUB_TOKEN": "ghp-2", "db_password": "pw-3",
               "AWS_SECRET_ACCESS_KEY": "aws-4", "Api_Key": "k-5", "LLM": "sk-test-1", "FROM_CLI": "cli-6"}
    for name, value in {**secrets, "PLAIN": "plain-7", "GH_ENTERPRISE_TOKEN": "ghe-8"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NANOCODER_PASS_ENV", "GH_ENTERPRISE_TOKEN,NOT_SET")
    workspace = Workspace(tmp_path)
    workspace.secrets.add("cli-6")  # the key in use, given by --api-key
    output = str(BashTool(workspace).execute(command="env"))
    assert "PLAIN=plain-7" in output and "GH_ENTERPRISE_TOKEN=ghe-8" in output
    for name, value in secrets.items():
        assert f"\n{name}=" not in f"\n{output}" and value not in output


# --- end to end: the installed command, --yes, a scratch HOME ------------------------------------

SPELLINGS = [
    'h=~; rm -rf "$h"/*', 'd=$HOME; rm -rf $d/*', 'echo "rm -rf ~/docs" | bash',
    "python3 -c \"import shutil, os; shutil.rmtree(os.path.expanduser('~/docs'))\"",
    "trap 'rm -rf ~/.ssh' EXIT; true", 'f() { rm -rf "$1"; }; f ~/docs', 'mv ~ ~.moved',
    'mv ~/.bashrc ~/.bashrc.bak', 'git -C ~ clean -ffdx', 'cd ~ && git reset -q --hard && git clean -ffdx',
    'find ~ -type f -print0 | xargs -0 rm -f', "perl -e 'unlink glob(\"$ENV{HOME}/.*rc\")'",
    't=~/.bashrc; cp /dev/null "$t"', 'ln -sf /dev/null ~/.bashrc', 'truncate -s 0 ~/.profile',
    "echo 'echo pwned' >> ~/.bashrc", "sed -i 's/^/#/' ~/.profile",
    'dd if=/dev/zero of=$HOME/notes.txt bs=1 count=10', 'tee ~/.ssh/authorized_keys < /dev/null',
    'xargs rm -rf <<< ~/docs', '$(echo rm) -rf ~/docs', 'a=r; b=m; $a$b -rf ~/docs',
    "python3 -c \"import os; [os.remove(os.path.join(r, f)) for r, _, fs in os.walk(os.path.expanduser('~')) "
    "for f in fs]\"", 'tar -cf archive.tar -C ~ . --remove-files', 'git -C ~ init', 'mkdir ~/newdir',
    'touch ~/.hushlogin', 'rm -rf ../sibling', 'mv ../sibling ../sibling2', 'cp -r . ../copy',
    'ln -s / ../link', "python3 -c \"open('../sibling/notes.txt', 'w')\"", 'unlink ~/notes.txt',
    'install -m 644 /dev/null ~/.bashrc', 'cd .. && rm -rf sibling', 'p=..; rm -rf $p/sibling',
    'shred -u ~/notes.txt', 'ssh-keygen -q -N "" -f ~/.ssh/id_new', 'git -C ~ config core.pager "touch x"',
    'printf x > ~/.ssh/config', 'mkfifo ~/fifo', 'echo ~/notes.txt | xargs truncate -s0',
    'for f in ~/*; do rm -rf "$f"; done', 'while read f; do rm -f "$f"; done < <(find ~ -type f)',
    'git -C ~ rm -rq --cached . && git -C ~ commit -qm gone', 'git -C ~ stash -u',
    'cat ~/.bashrc > ~/.bashrc', 'cp -r ~ ~/../home2 && rm -rf ~/docs',
    "python3 -c \"import os; os.rename(os.path.expanduser('~/.ssh'), '/tmp/ssh')\"",
]
METADATA = [  # Landlock leaves these alone: they hold where the read-only mounts could be made
    'chmod 000 ~', 'find ~ -exec chmod 000 {} +', 'touch -d 2001-01-01 ~/.bashrc', 'chown -R 1:1 ~/.ssh',
    "python3 -c \"import os; os.utime(os.path.expanduser('~/.profile'), (0, 0))\"", 'chmod -x ~/.git/hooks/*',
]


@needs_landlock
def test_yes_mode_cannot_touch_home_or_the_workspace_parent(scratch):
    home, work = scratch
    spellings = SPELLINGS + (METADATA if PROBE.mounts else [])
    runnable = [c for c in spellings if classify(c, work, home=home, root=work)[0] != FORBIDDEN]
    assert len(runnable) >= 30
    calls = [{"name": "bash", "arguments": {"command": c}} for c in runnable]
    (home / ".nanocoder").mkdir()  # nanocoder's own (it keeps the session there): made before the snapshot
    homes, parents = snapshot(home, skip=(".nanocoder",)), snapshot(work.parent, skip=("work",))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "NANOCODER_")) and not k.lower().endswith("_proxy")}
    with ScriptedServer([{"tool_calls": calls}, "Done."]) as server:
        result = subprocess.run([str(NANOCODER), "-y", "-p", "go", "--base-url", server.url],
                                env={**env, "HOME": str(home), "OPENAI_API_KEY": "test"}, cwd=work,
                                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    answers = [m["content"] for m in server.requests[1]["messages"] if m["role"] == "tool"]
    assert len(answers) == len(runnable) and all("[exit code: " in a for a in answers), json.dumps(answers)
    assert snapshot(home, skip=(".nanocoder",)) == homes
    assert snapshot(work.parent, skip=("work",)) == parents
