"""End to end: the installed `nanocoder` command as a subprocess, against the scripted server."""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nanocoder import demo
from history_rules import problems
from nanocoder.history import INTERRUPTED
from scripted import ScriptedServer

NANOCODER = Path(sys.executable).parent / "nanocoder"  # the command of the virtualenv running the tests
KEY = "sk-test-key-never-stored"
DEAD = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused at once


@pytest.fixture
def env(tmp_path):
    """A clean environment: its own HOME, no key, no settings, no proxy from the machine running the tests."""
    home = tmp_path / "home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OPENAI_", "NANOCODER_")) and not k.lower().endswith("_proxy")}
    return {**clean, "HOME": str(home), "NO_COLOR": "1"}


@pytest.fixture
def workspace(tmp_path):
    folder = tmp_path / "repo"
    folder.mkdir()
    return folder


def run(args, env, cwd, timeout=30):
    return subprocess.run([str(NANOCODER), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def sessions(env):
    return sorted((Path(env["HOME"]) / ".nanocoder" / "sessions").glob("*.json"))


def one_line_error(result, *words, retries=0):
    """A failure the user can act on: non-zero exit, one line on stderr (after a line for each
    retry, if any), nothing on stdout."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if "retrying in" in line] == lines[:retries], result.stderr
    lines = lines[retries:]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_version_and_help(env, workspace):
    version = run(["--version"], env, workspace)
    assert version.returncode == 0 and version.stdout == "nanocoder 0.1.0\n"
    help_ = run(["--help"], env, workspace)
    assert help_.returncode == 0
    for flag in ("--prompt", "--resume", "--yes", "--demo", "--base-url", "--api-key"):
        assert flag in help_.stdout


def test_no_key_is_one_clear_line(env, workspace):
    line = one_line_error(run(["-p", "hi"], env, workspace), "OPENAI_API_KEY", "--api-key")
    assert line.startswith("nanocoder: ")


def test_demo_runs_offline_without_a_key(env, workspace, tmp_path):
    # Every proxy points at a dead port: the demo must need neither a key nor any network,
    # and a proxy setting must not capture its local scripted server.
    temp = tmp_path / "tmp"
    temp.mkdir()
    offline = {**env, "HTTP_PROXY": DEAD, "HTTPS_PROXY": DEAD, "ALL_PROXY": DEAD, "http_proxy": DEAD,
               "https_proxy": DEAD, "all_proxy": DEAD, "OPENAI_BASE_URL": f"{DEAD}/v1", "TMPDIR": str(temp)}
    result = run(["--demo"], offline, workspace)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "+from textutils import slugify" in result.stdout  # the edit's diff
    assert "-from text_utils import slugify" in result.stdout
    assert "hello-nanocoder-world" in result.stdout  # the real program's output, after the fix
    assert "> edit_file" in result.stdout and result.stdout.index("+from textutils") < result.stdout.rindex("> bash")
    assert list(workspace.iterdir()) == []  # the demo works in its own temporary folder...
    assert list(temp.iterdir()) == []  # ...and leaves nothing behind


def test_one_shot_fixes_a_broken_import(env, workspace):
    demo.make_project(workspace)
    broken = subprocess.run([sys.executable, "app.py"], cwd=workspace, capture_output=True, text=True)
    assert broken.returncode != 0 and "ModuleNotFoundError" in broken.stderr
    with ScriptedServer(demo.replies()) as server:
        result = run(["-p", demo.PROMPT, "-y", "--base-url", server.url, "--api-key", KEY], env, workspace)
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == 5 and server.requests[0]["messages"][-1]["content"] == demo.PROMPT
    # stdout is the final answer alone, and it quotes the real program's output
    assert result.stdout.startswith("Fixed.")
    assert "```\nhello-nanocoder-world\n" in result.stdout and result.stdout.endswith("```\n")
    for chatter in ("> bash", "> glob", "> read_file", "> edit_file", "⎿", "+from textutils"):
        assert chatter not in result.stdout
    assert "> edit_file" in result.stderr and "+from textutils import slugify" in result.stderr
    assert "from textutils import slugify" in (workspace / "app.py").read_text()
    fixed = subprocess.run([sys.executable, "app.py"], cwd=workspace, capture_output=True, text=True)
    assert fixed.returncode == 0 and fixed.stdout.strip() == "hello-nanocoder-world"
    saved = sessions(env)
    assert len(saved) == 1
    assert stat.S_IMODE(saved[0].stat().st_mode) == 0o600
    text = saved[0].read_text()
    assert demo.PROMPT in text and "hello-nanocoder-world" in text
    for path in Path(env["HOME"]).rglob("*"):  # the key reaches no file at all
        assert not path.is_file() or KEY not in path.read_text(errors="replace"), path


def test_one_shot_without_yes_runs_no_changing_tool(env, workspace):
    write = {"name": "write_file", "arguments": {"file_path": "x.txt", "content": "x"}}
    with ScriptedServer([{"tool_calls": [write]}, "I could not write it."]) as server:
        result = run(["-p", "write x.txt", "--base-url", server.url, "--api-key", KEY], env, workspace)
    assert result.returncode == 0, result.stderr
    assert not (workspace / "x.txt").exists()
    tool_result = server.requests[1]["messages"][-1]
    assert tool_result["role"] == "tool" and "declined" in tool_result["content"]
    assert "write_file" in result.stderr and "re-run with --yes" in result.stderr
    assert result.stdout == "I could not write it.\n"


@pytest.mark.parametrize("status, words", [
    (401, ["API key", "OPENAI_API_KEY", "401"]),
    (404, ["'nope-model'", "not found"]),
])
def test_provider_errors_are_one_clear_line(env, workspace, status, words):
    with ScriptedServer([{"status": status, "error": "scripted failure"}]) as server:
        result = run(["-p", "hi", "-m", "nope-model", "--base-url", server.url, "--api-key", KEY], env, workspace)
    one_line_error(result, "nanocoder: ", *words)
    assert len(server.requests) == 1  # not retried: retrying cannot fix a bad key or a wrong model name
    assert server.requests[0]["model"] == "nope-model"


def test_unreachable_server_is_retried_visibly_then_one_clear_line(env, workspace):
    result = run(["-p", "hi", "--base-url", f"{DEAD}/v1", "--api-key", KEY], env, workspace)
    one_line_error(result, "nanocoder: ", "127.0.0.1:9", "failed", retries=3)


def test_bad_setting_in_the_environment_is_one_clear_line(env, workspace):
    result = run(["-p", "hi", "--api-key", KEY], {**env, "NANOCODER_MAX_TOKENS": "abc"}, workspace)
    one_line_error(result, "NANOCODER_MAX_TOKENS", "'abc'", "number")


def test_resume_continues_a_saved_session(env, workspace):
    with ScriptedServer(["first answer", "second answer"]) as server:
        args = ["--base-url", server.url, "--api-key", KEY]
        first = run(["-p", "remember the word pelican", *args], env, workspace)
        assert first.returncode == 0 and first.stdout == "first answer\n"
        [saved] = sessions(env)
        result = run(["-r", saved.stem, "-p", "second", *args], env, workspace)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "second answer\n"
    assert len(server.requests) == 2
    sent = [(m["role"], m["content"]) for m in server.requests[1]["messages"]]
    assert sent[0][0] == "system"
    assert sent[1:] == [("user", "remember the word pelican"), ("assistant", "first answer"), ("user", "second")]
    assert sessions(env) == [saved]  # the same session goes on, in the same file
    assert "second answer" in saved.read_text()


def test_resume_of_a_missing_session_is_one_clear_line(env, workspace):
    one_line_error(run(["-r", "nope", "-p", "x", "--api-key", KEY], env, workspace), "no session 'nope'")


def test_session_is_valid_json_after_a_tool_turn(env, workspace):
    (workspace / "a.txt").write_text("alpha\n")
    with ScriptedServer([{"tool_calls": [{"name": "read_file", "arguments": {"file_path": "a.txt"}}]},
                         "It says alpha."]) as server:
        result = run(["-p", "read a.txt", "--base-url", server.url, "--api-key", KEY], env, workspace)
    assert result.returncode == 0, result.stderr
    saved = json.loads(sessions(env)[0].read_text())
    assert [m["role"] for m in saved["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert "alpha" in saved["messages"][3]["content"]
    assert saved["model"] and saved["cwd"] == str(workspace.resolve())


@pytest.mark.parametrize("key", ["ollama", "x"])
def test_commands_never_see_the_key_and_sessions_are_stored_as_said(env, workspace, key):
    show = {"name": "bash", "arguments": {"command": "echo key=$OPENAI_API_KEY; env | grep -ci -e token -e secret"}}
    with ScriptedServer([{"tool_calls": [show]}, "Configure ollama, then x."]) as server:
        result = run(["-p", "configure ollama with x", "-y", "--base-url", server.url],
                     {**env, "OPENAI_API_KEY": key, "GITHUB_TOKEN": "t0k3n", "MY_SECRET": "s3cr3t"}, workspace)
    assert result.returncode == 0, result.stderr
    output = server.requests[1]["messages"][-1]["content"]
    assert output.startswith("key=\n0\n")  # neither the key nor anything named like a secret
    saved = json.loads(sessions(env)[0].read_text())  # stored as the conversation was: nothing rewritten
    assert saved["messages"][1:] == server.requests[1]["messages"][1:] + [
        {"role": "assistant", "content": "Configure ollama, then x."}]
    assert stat.S_IMODE((Path(env["HOME"]) / ".nanocoder").stat().st_mode) == 0o700


def test_unwritable_home_warns_but_keeps_the_answer(env, workspace, tmp_path):
    not_a_folder = tmp_path / "home-is-a-file"
    not_a_folder.write_text("")
    with ScriptedServer(["the answer"]) as server:
        result = run(["-p", "hi", "--base-url", server.url, "--api-key", KEY], {**env, "HOME": str(not_a_folder)},
                     workspace)
    assert result.returncode == 0 and result.stdout == "the answer\n"
    assert "could not save the session" in result.stderr and "Traceback" not in result.stderr


def test_continue_resumes_the_latest_session_of_this_folder(env, workspace, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    with ScriptedServer(["in repo", "elsewhere", "continued"]) as server:
        args = ["--base-url", server.url, "--api-key", KEY]
        assert run(["-p", "the word is heron", *args], env, workspace).returncode == 0
        assert run(["-p", "unrelated", *args], env, other).returncode == 0  # newer, but another folder
        result = run(["-c", "-p", "what was the word?", *args], env, workspace)
    assert result.returncode == 0 and result.stdout == "continued\n", result.stderr
    sent = [m["content"] for m in server.requests[2]["messages"][1:]]
    assert sent == ["the word is heron", "in repo", "what was the word?"]
    one_line_error(run(["-c", "-p", "x", "--api-key", KEY], env, tmp_path), "no saved session for")


def test_a_session_saved_mid_turn_is_repaired_on_resume(env, workspace):
    folder = Path(env["HOME"]) / ".nanocoder" / "sessions"
    folder.mkdir(parents=True)
    call = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": '{"command": "make"}'}}
    messages = [{"role": "system", "content": "old"}, {"role": "user", "content": "build it"},
                {"role": "assistant", "content": None, "tool_calls": [call, dict(call, id="c2")]},
                {"role": "tool", "tool_call_id": "c1", "content": "built"}]  # c2 never answered
    (folder / "cut.json").write_text(json.dumps({"model": "m", "cwd": str(workspace), "messages": messages,
                                                 "id": "cut", "created": 0}))
    with ScriptedServer(["resumed"]) as server:
        result = run(["-r", "cut", "-p", "go on", "--base-url", server.url, "--api-key", KEY], env, workspace)
    assert result.returncode == 0 and result.stdout == "resumed\n", result.stderr
    sent = server.requests[0]["messages"]
    assert problems(sent) == []
    assert [m.get("content") for m in sent if m["role"] == "tool"] == ["built", INTERRUPTED]


def test_one_shot_modes_read_only_runs_edits_mode_edits_and_commands_are_refused(env, workspace):
    (workspace / "a.txt").write_text("alpha\n")
    bash = lambda command: {"name": "bash", "arguments": {"command": command}}
    write = {"name": "write_file", "arguments": {"file_path": "b.txt", "content": "beta\n"}}
    with ScriptedServer([{"tool_calls": [bash("cat a.txt"), bash("touch made.txt"), write]}, "ask mode",
                         {"tool_calls": [bash("touch made.txt"), write]}, "edits mode"]) as server:
        args = ["--base-url", server.url, "--api-key", KEY]
        asked = run(["-p", "go", *args], env, workspace)
        edits = run(["-p", "go", "--permission-mode", "edits", *args], env, workspace)
    assert asked.returncode == edits.returncode == 0
    read, touch, wrote = [m["content"] for m in server.requests[1]["messages"][-3:]]
    assert "alpha" in read and "declined" in touch and "declined" in wrote  # reading never asks
    assert "re-run with --yes" in asked.stderr
    touch, wrote = [m["content"] for m in server.requests[3]["messages"][-2:]]
    assert "declined" in touch and wrote.startswith("Created")
    assert (workspace / "b.txt").read_text() == "beta\n" and not (workspace / "made.txt").exists()


def test_a_forbidden_command_is_refused_even_with_yes(env, workspace):
    with ScriptedServer([{"tool_calls": [{"name": "bash", "arguments": {"command": "touch ran; rm -rf ~"}}]},
                         "Refused."]) as server:
        result = run(["-p", "clean", "-y", "--base-url", server.url, "--api-key", KEY], env, workspace)
    assert result.returncode == 0 and not (workspace / "ran").exists()
    assert "never run" in server.requests[1]["messages"][-1]["content"]
