import os
import sys
import threading
import time

import pytest

from nanocoder.tools.base import ToolError, Workspace
from nanocoder.tools.bash import BashTool


def alive(pid: int) -> bool:
    """A zombie counts as gone: it has stopped, it only waits to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def test_output_and_exit_code(tmp_path):
    """The exit code is a field beside the output, and the model reads it after the output; a failure in the
    sandbox says where it ran (whether the sandbox caused it, nothing can know) and offers a rerun outside."""
    workspace = Workspace(tmp_path)
    result = BashTool(workspace).execute(command="echo out; echo err >&2; exit 3")
    assert result.content[0] == "out\nerr" and result.exit_code == 3 and not result.is_error
    assert str(result).startswith("out\nerr\n") and str(result).endswith("\n[exit code: 3]")
    assert result.sandbox == ("off" if workspace.sandbox.support() else "workspace-write")
    assert (result.rerun is None) == (result.sandbox == "off")
    workspace.sandbox_policy = "off"
    assert str(BashTool(workspace).execute(command="echo out; exit 3")) == "out\n[exit code: 3]"


def test_no_output_is_said(tmp_path):
    assert str(BashTool(Workspace(tmp_path)).execute(command="true")) == "(no output)\n[exit code: 0]"


def test_runs_in_workspace_cwd_with_quiet_env(tmp_path):
    result = str(BashTool(Workspace(tmp_path)).execute(command="pwd -P; echo $GIT_PAGER $GIT_TERMINAL_PROMPT"))
    assert result == f"{tmp_path.resolve()}\ncat 0\n[exit code: 0]"


def test_cd_persists_and_workspaces_stay_independent(tmp_path):
    (tmp_path / "sub").mkdir()
    one, two = Workspace(tmp_path), Workspace(tmp_path)
    bash_one, bash_two = BashTool(one), BashTool(two)
    bash_one.execute(command="cd sub")
    assert one.cwd == (tmp_path / "sub").resolve()
    assert str(bash_one.execute(command="pwd")) == f"{(tmp_path / 'sub').resolve()}\n[exit code: 0]"
    assert two.cwd == tmp_path.resolve()
    assert str(bash_two.execute(command="pwd")) == f"{tmp_path.resolve()}\n[exit code: 0]"


def test_cd_kept_even_when_command_fails_afterwards(tmp_path):
    (tmp_path / "sub").mkdir()
    workspace = Workspace(tmp_path)
    assert str(BashTool(workspace).execute(command="cd sub && false")).endswith("[exit code: 1]")
    assert workspace.cwd == (tmp_path / "sub").resolve()


def test_no_temp_files_in_workspace(tmp_path):
    BashTool(Workspace(tmp_path)).execute(command="cd .")
    assert os.listdir(tmp_path) == []


def test_timeout_kills_grandchild(tmp_path):
    result = BashTool(Workspace(tmp_path)).execute(
        command="bash -c 'sleep 30 & echo $! > pidfile; wait'", timeout=1)
    assert "[Command timed out after 1 s and was stopped]" in str(result) and result.timed_out
    pid = int((tmp_path / "pidfile").read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def test_stdin_is_not_the_terminal(tmp_path):
    result = str(BashTool(Workspace(tmp_path)).execute(command="cat", timeout=10))
    assert result == "(no output)\n[exit code: 0]"  # cat met end of input at once: it did not time out


def test_long_output_keeps_head_and_tail(tmp_path):
    result = str(BashTool(Workspace(tmp_path)).execute(command="seq 1 100000"))
    assert result.startswith("1\n2\n3\n")
    assert result.endswith("99999\n100000\n[exit code: 0]")
    assert "characters cut ...]" in result
    assert len(result) < 31_000


def test_huge_output_is_counted_not_kept(tmp_path):
    result = str(BashTool(Workspace(tmp_path)).execute(command="yes | head -c 5000000"))
    assert result.startswith("y\ny\n") and result.endswith("y\n[exit code: 0]")
    assert "characters and 3,000,000 more bytes cut ...]" in result
    assert len(result) < 31_000


def test_cancel_from_another_thread_kills_running_command(tmp_path):
    tool = BashTool(Workspace(tmp_path))
    results = []
    runner = threading.Thread(target=lambda: results.append(str(tool.execute(command="sleep 30"))))
    start = time.monotonic()
    runner.start()
    while not tool._running and time.monotonic() - start < 5:
        time.sleep(0.02)
    tool.cancel()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert results[0].endswith("[exit code: -15 (SIGTERM)]")  # the signal, a field too:
    assert tool.execute(command="kill -KILL $$").signal == "SIGKILL"


def test_refused_command_is_not_run(tmp_path):
    with pytest.raises(ToolError, match="^refused:") as refused:
        BashTool(Workspace(tmp_path)).execute(command="touch ran; rm -rf ~")
    assert "home folder" in str(refused.value) and "not run" in str(refused.value)
    assert not (tmp_path / "ran").exists()


def test_cd_carries_over_under_plain_sh_too(tmp_path, monkeypatch):
    """Without bash the command runs under /bin/sh (dash allows file descriptors 0-9 only)."""
    import nanocoder.tools.bash as bash
    monkeypatch.setattr(bash.shutil, "which", lambda name: None)
    (tmp_path / "sub").mkdir()
    workspace = Workspace(tmp_path)
    result = BashTool(workspace).execute(command="exec 3>&1; echo $0 >&3; cd sub")
    assert str(result) == "/bin/sh\n[exit code: 0]"
    assert workspace.cwd == tmp_path / "sub"


@pytest.mark.parametrize("start", ["", "nohup ", "setsid "])
def test_what_a_command_starts_in_the_background_ends_with_it(tmp_path, start):
    """Issue 11: `cmd &`, `nohup cmd &` and `setsid cmd &` (out of the command's process group) end with the call."""
    script = (f"{start}sleep 300 >/dev/null 2>&1 & until grep -qx sleep /proc/$!/comm; do :; done; "
              "echo $! $(cut -d' ' -f5 /proc/$$/stat) $(cut -d' ' -f5 /proc/$!/stat)")  # the sleep, the groups
    result = str(BashTool(Workspace(tmp_path)).execute(command=script, timeout=30))
    pid, shell, group = map(int, result.split("\n")[0].split())  # the sleep, the shell's group, the sleep's
    try:
        assert (group != shell) == (start == "setsid "), result  # setsid did take it out of the group
        assert not alive(pid)
    finally:
        if alive(pid):
            os.kill(pid, 9)


@pytest.mark.skipif(sys.platform != "linux", reason="the sandbox helper, a subreaper, runs on Linux only")
def test_a_process_that_escapes_the_group_ends_with_the_call_too(tmp_path):
    """Cleared of its environment and out of the group (`env -i setsid`): the helper, its subreaper, ends it; the
    call returns with its cd followed (issue 18)."""
    (tmp_path / "sub").mkdir()
    workspace = Workspace(tmp_path)
    script = "env -i setsid sleep 300 & until grep -qx sleep /proc/$!/comm; do :; done; echo $! > pid; cd sub"
    result = str(BashTool(workspace).execute(command=script, timeout=30))
    pid = int((tmp_path / "pid").read_text())
    try:
        assert not alive(pid) and workspace.cwd == (tmp_path / "sub").resolve()
        assert result == "(no output)\n[exit code: 0]"
    finally:
        if alive(pid):
            os.kill(pid, 9)


def test_a_background_command_ended_before_its_exec_leaves_cd_alone(tmp_path):
    """A `cmd &` is a copy of the shell until its exec (here it waits to open a FIFO); ended then, it ran the EXIT
    trap too, and the two folders written made the cd unreadable."""
    (tmp_path / "sub").mkdir()
    os.mkfifo(tmp_path / "fifo")
    workspace = Workspace(tmp_path)
    assert str(BashTool(workspace).execute(command="sleep 300 < fifo & cd sub")) == "(no output)\n[exit code: 0]"
    assert workspace.cwd == (tmp_path / "sub").resolve()
