"""Issue 21, items 13-15, what still failed: `nanocoder --demo | head -1` exited 1 (rich's own answer to a
closed pipe); and what the README says of `.git` writes by commands under `-y --sandbox off`."""
import json
import subprocess

from scripted import ScriptedServer
from test_cli import NANOCODER, env, run, workspace  # noqa: F401 (fixtures)


def test_demo_into_a_pipe_closed_after_one_line_ends_quietly(env, workspace):  # noqa: F811
    demo = subprocess.Popen([str(NANOCODER), "--demo"], env=env, cwd=workspace, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert demo.stdout.readline().startswith("nanocoder demo")
    demo.stdout.close()  # as `| head -1` does: the demo is still streaming its first reply
    assert demo.wait(timeout=60) == 0
    assert demo.stderr.read() == ""


def test_a_command_writing_git_config_under_yes_and_sandbox_off_is_not_asked(env, workspace):  # noqa: F811
    # What the README now says: .git is protected from the file tools; a command is judged by what it runs,
    # not by the files it touches, and under --sandbox off nothing puts .git back.
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    call = {"name": "bash", "arguments": {"command": "git config core.fsmonitor 'touch owned'"}}
    with ScriptedServer([{"tool_calls": [call]}, "done"]) as server:
        result = run(["-p", "go", "-y", "--sandbox", "off", "--base-url", server.url, "--api-key", "k",
                      "--output-format", "json"], env, workspace)
    assert json.loads(result.stdout)["result"] == "done"
    assert "fsmonitor = touch owned" in (workspace / ".git" / "config").read_text()
    edit = {"name": "write_file", "arguments": {"file_path": ".git/config", "content": "[core]\n"}}
    with ScriptedServer([{"tool_calls": [edit]}, "refused"]) as server:
        result = run(["-p", "go", "-y", "--sandbox", "off", "--base-url", server.url, "--api-key", "k"],
                     env, workspace)
    assert "fsmonitor = touch owned" in (workspace / ".git" / "config").read_text()  # the file tool asked
    assert "re-run" in result.stderr or "does not cover" in result.stderr
