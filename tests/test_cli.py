"""End to end: the installed `nanocoder` command as a subprocess, against the scripted server."""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from nanocoder import demo
from nanocoder.scripted import ScriptedServer

NANOCODER = Path(sys.executable).parent / "nanocoder"
KEY = "sk-test-key-never-stored"


@pytest.fixture
def env(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_"))}
    return {**clean, "HOME": str(home), "NO_COLOR": "1"}


@pytest.fixture
def workspace(tmp_path):
    folder = tmp_path / "repo"
    folder.mkdir()
    return folder


def run(args, env, cwd, timeout=60):
    return subprocess.run([str(NANOCODER), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def one_line_error(result, *words):
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def test_version_and_help(env, workspace):
    assert run(["--version"], env, workspace).stdout.strip() == "nanocoder 0.1.0"
    help_text = run(["--help"], env, workspace).stdout
    assert all(flag in help_text for flag in ("--prompt", "--resume", "--yes", "--demo"))


def test_no_key_is_one_clear_line(env, workspace):
    one_line_error(run(["-p", "hi"], env, workspace), "OPENAI_API_KEY", "--api-key")


def test_demo_runs_offline_without_a_key(env, workspace):
    result = run(["--demo"], env, workspace)
    assert result.returncode == 0, result.stderr
    assert "+from textutils import slugify" in result.stdout
    assert "hello-nanocoder-world" in result.stdout


def test_one_shot_fixes_a_broken_import(env, workspace):
    demo.make_project(workspace)
    with ScriptedServer(demo.replies()) as server:
        result = run(["-p", demo.PROMPT, "-y", "--base-url", server.url, "--api-key", KEY], env, workspace)
    assert result.returncode == 0, result.stderr
    assert "Fixed." in result.stdout and "hello-nanocoder-world" in result.stdout
    assert "> edit_file" not in result.stdout and "> edit_file" in result.stderr  # chatter on stderr
    assert "from textutils import slugify" in (workspace / "app.py").read_text()
    ran = subprocess.run([sys.executable, "app.py"], cwd=workspace, capture_output=True, text=True)
    assert ran.stdout.strip() == "hello-nanocoder-world"
    sessions = list((Path(env["HOME"]) / ".nanocoder" / "sessions").glob("*.json"))
    assert len(sessions) == 1
    assert stat.S_IMODE(sessions[0].stat().st_mode) == 0o600
    assert KEY not in sessions[0].read_text() and demo.PROMPT in sessions[0].read_text()


def test_one_shot_without_yes_refuses_changes(env, workspace):
    with ScriptedServer([{"tool_calls": [{"name": "write_file", "arguments": {"file_path": "x.txt", "content": "x"}}]},
                         "I could not write it."]) as server:
        result = run(["-p", "write x.txt", "--base-url", server.url, "--api-key", KEY], env, workspace)
        assert "declined" in server.requests[1]["messages"][-1]["content"]
    assert result.returncode == 0
    assert not (workspace / "x.txt").exists()
    assert "--yes" in result.stderr and result.stdout.strip() == "I could not write it."


@pytest.mark.parametrize("status, words", [(401, ["API key", "--api-key"]), (404, ["'nope-model'", "not found"])])
def test_provider_errors_are_one_clear_line(env, workspace, status, words):
    with ScriptedServer([{"status": status, "error": "scripted failure"}]) as server:
        result = run(["-p", "hi", "-m", "nope-model", "--base-url", server.url, "--api-key", KEY], env, workspace)
    one_line_error(result, *words)


def test_unreachable_server_and_bad_settings(env, workspace):
    one_line_error(run(["-p", "hi", "--base-url", "http://127.0.0.1:9/v1", "--api-key", KEY], env, workspace),
                   "127.0.0.1:9")
    one_line_error(run(["-p", "hi", "--api-key", KEY], {**env, "NANOCODER_MAX_TOKENS": "abc"}, workspace),
                   "NANOCODER_MAX_TOKENS")


def test_resume_continues_a_saved_session(env, workspace):
    with ScriptedServer(["first answer", "second answer"]) as server:
        args = ["--base-url", server.url, "--api-key", KEY]
        assert run(["-p", "remember the word pelican", *args], env, workspace).returncode == 0
        session = next((Path(env["HOME"]) / ".nanocoder" / "sessions").glob("*.json")).stem
        result = run(["-r", session, "-p", "which word?", *args], env, workspace)
        assert result.returncode == 0 and result.stdout.strip() == "second answer"
        sent = [m["content"] for m in server.requests[1]["messages"]]
        assert sent[1:] == ["remember the word pelican", "first answer", "which word?"]
    one_line_error(run(["-r", "nope", "-p", "x", "--api-key", KEY], env, workspace), "no session 'nope'")


def test_session_is_valid_json_after_a_tool_turn(env, workspace):
    (workspace / "a.txt").write_text("alpha\n")
    with ScriptedServer([{"tool_calls": [{"name": "read_file", "arguments": {"file_path": "a.txt"}}]},
                         "It says alpha."]) as server:
        run(["-p", "read a.txt", "--base-url", server.url, "--api-key", KEY], env, workspace)
    saved = json.loads(next((Path(env["HOME"]) / ".nanocoder" / "sessions").glob("*.json")).read_text())
    roles = [m["role"] for m in saved["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    assert "alpha" in saved["messages"][3]["content"]


def test_unwritable_home_warns_but_keeps_the_answer(env, workspace, tmp_path):
    not_a_folder = tmp_path / "home-is-a-file"
    not_a_folder.write_text("")
    with ScriptedServer(["the answer"]) as server:
        result = run(["-p", "hi", "--base-url", server.url, "--api-key", KEY], {**env, "HOME": str(not_a_folder)},
                     workspace)
    assert result.returncode == 0 and result.stdout.strip() == "the answer"
    assert "could not save the session" in result.stderr and "Traceback" not in result.stderr
