"""nanocoder in scripts and CI: JSON output, exit codes, piped input, SIGTERM. Through the
installed command against the scripted server."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from scripted import ScriptedServer
from test_cli import NANOCODER, env, sessions, workspace  # noqa: F401 (fixtures)


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


def nanocoder(server, *args, env, cwd, stdin=subprocess.DEVNULL, input=None):
    return subprocess.run([str(NANOCODER), *args, "--base-url", server.url, "--api-key", "k"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60, stdin=None if input is not None else stdin,
                          input=input)


def test_json_output_is_one_result_object(env, workspace):
    (workspace / "a.txt").write_text("alpha\n")
    with ScriptedServer([{"tool_calls": [call("read_file", file_path="a.txt")], "cached_tokens": 3}, "It says alpha."]) as s:
        result = nanocoder(s, "-p", "read a.txt", "--output-format", "json", env=env, cwd=workspace)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["type"] == "result" and out["subtype"] == "success" and out["is_error"] is False
    assert out["result"] == "It says alpha." and out["num_turns"] == 2
    assert out["session_id"] == sessions(env)[0].stem and isinstance(out["duration_ms"], int)
    assert out["usage"]["input_tokens"] > 0 and out["usage"]["output_tokens"] > 0


def test_stream_json_is_one_event_a_line(env, workspace):
    (workspace / "a.txt").write_text("alpha\n")
    with ScriptedServer([{"content": "Reading.", "tool_calls": [call("read_file", file_path="a.txt")]},
                         "It says alpha."]) as s:
        result = nanocoder(s, "-p", "read a.txt", "--output-format", "stream-json", env=env, cwd=workspace)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [(x["type"], x.get("subtype") or x.get("message", {}).get("content", [{}])[0].get("type")) for x in lines]
    assert kinds == [("system", "init"), ("assistant", "text"), ("assistant", "tool_use"), ("user", "tool_result"),
                     ("assistant", "text"), ("result", "success")]
    use, res = lines[2]["message"]["content"][0], lines[3]["message"]["content"][0]
    assert use["name"] == "read_file" and use["input"] == {"file_path": "a.txt"} and res["tool_use_id"] == use["id"]
    assert "alpha" in res["content"] and res["is_error"] is False
    assert lines[-1]["result"] == "It says alpha."


def test_max_turns_exits_non_zero_with_its_subtype(env, workspace):
    with ScriptedServer([{"tool_calls": [call("glob", pattern=f"*.{n}")]} for n in range(5)]) as s:
        result = nanocoder(s, "-p", "go", "--max-turns", "3", "--output-format", "json", env=env, cwd=workspace)
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert out["subtype"] == "error_max_turns" and out["is_error"] and len(s.requests) == 3
    assert "--max-turns" in result.stderr.splitlines()[-1]


def test_piped_text_is_added_to_the_prompt_and_dash_reads_it_all(env, workspace):
    with ScriptedServer(["one", "two"]) as s:
        first = nanocoder(s, "-p", "explain", env=env, cwd=workspace, input="ERROR: disk full\n")
        second = nanocoder(s, "-p", "-", env=env, cwd=workspace, input="what is 2+2?")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert s.requests[0]["messages"][-1]["content"] == "explain\n\nERROR: disk full\n"
    assert s.requests[1]["messages"][-1]["content"] == "what is 2+2?"


@pytest.mark.parametrize("args", [["-p", ""], ["-p", "   "], ["-p", "-"]])
def test_an_empty_prompt_is_a_usage_error_and_costs_nothing(env, workspace, args):
    with ScriptedServer(["unused"]) as s:
        result = nanocoder(s, *args, env=env, cwd=workspace, input="")
    assert result.returncode == 2 and "empty" in result.stderr and s.requests == []


def test_sigterm_stops_the_command_saves_the_turn_and_exits(env, workspace):
    with ScriptedServer([{"tool_calls": [call("bash", command="echo $$ > pid; sleep 60")]}]) as s:
        proc = subprocess.Popen([str(NANOCODER), "-p", "wait", "-y", "--base-url", s.url, "--api-key", "k"],
                                env=env, cwd=workspace, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        pid_file = workspace / "pid"
        for _ in range(400):  # until the command runs (a bound on a wait, not an assert on speed)
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "Traceback" not in err
    pid = int(pid_file.read_text())
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    saved = json.loads(sessions(env)[0].read_text())
    assert saved["messages"][1]["content"] == "wait" and saved["messages"][-2]["role"] == "tool"


@pytest.mark.parametrize("reply, says", [
    ({"content": "The fix is to change the", "finish_reason": "length"}, "token limit (NANOCODER_MAX_TOKENS)"),
    ({"content": "", "finish_reason": "content_filter"}, "withheld the answer"),
    ({"content": ""}, "empty answer"),
])
def test_a_cut_withheld_or_empty_answer_is_not_a_success(env, workspace, reply, says):
    with ScriptedServer([reply]) as s:
        text = nanocoder(s, "-p", "fix it", env=env, cwd=workspace)
        data = nanocoder(s.__class__([reply]).start(), "-p", "fix it", "--output-format", "json", env=env, cwd=workspace)
    assert text.returncode == 1 and says in text.stderr and "Traceback" not in text.stderr
    assert text.stdout == (reply["content"] + "\n" if reply["content"] else "")  # the answer only, as it came
    out = json.loads(data.stdout)
    assert data.returncode == 1 and out["is_error"] and out["subtype"] == "error_during_execution"
    assert out["stop_reason"] == (reply.get("finish_reason") or "empty")


def test_a_call_cut_by_the_token_limit_is_never_run(env, workspace):
    cut = {"tool_calls": [{"name": "write_file", "arguments": {"file_path": "x.txt", "content": "half"}}],
           "finish_reason": "length"}
    with ScriptedServer([cut, "I will send a smaller one."]) as s:
        result = nanocoder(s, "-p", "write", "-y", env=env, cwd=workspace)
    assert result.returncode == 0 and not (workspace / "x.txt").exists()
    assert "cut off by the token limit" in s.requests[1]["messages"][-1]["content"]


def test_sessions_are_listed_from_the_shell_this_folders_first(env, workspace, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    with ScriptedServer(["a", "b"]) as s:
        nanocoder(s, "-p", "here first", env=env, cwd=workspace)
        nanocoder(s, "-p", "elsewhere later", env=env, cwd=other)
    listed = subprocess.run([str(NANOCODER), "--sessions"], env=env, cwd=workspace, capture_output=True, text=True)
    lines = listed.stdout.splitlines()
    assert listed.returncode == 0 and len(lines) == 2
    assert "here first" in lines[0] and str(workspace) in lines[0] and "elsewhere later" in lines[1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Landlock is Linux's")
def test_sandbox_flag_read_only_stops_an_approved_write(env, workspace):
    from nanocoder.sandbox import Sandbox
    if Sandbox().support():
        pytest.skip(Sandbox().support())
    touch = {"tool_calls": [call("bash", command="touch made.txt")]}
    with ScriptedServer([touch, "tried", touch, "done"]) as s:
        denied = nanocoder(s, "-p", "make it", "-y", "--sandbox", "read-only", env=env, cwd=workspace)
        assert not (workspace / "made.txt").exists()
        allowed = nanocoder(s, "-p", "make it", "-y", env=env, cwd=workspace)
    assert denied.returncode == allowed.returncode == 0
    assert "sandbox" in s.requests[1]["messages"][-1]["content"] and (workspace / "made.txt").exists()


def test_undecodable_bytes_in_the_prompt_and_the_folder_are_no_crash(env, tmp_path):
    odd = tmp_path / os.fsdecode(b"caf\xe9")  # a folder name that is not UTF-8
    odd.mkdir()
    with ScriptedServer(["fine"]) as s:
        result = subprocess.run([str(NANOCODER).encode(), b"-p", b"look at \xff\xfe", b"--base-url", s.url.encode(),
                                 b"--api-key", b"k"], env=env, cwd=odd, capture_output=True, timeout=60)
    assert result.returncode == 0 and result.stdout == b"fine\n", result.stderr
    sent = s.requests[0]["messages"]
    assert sent[-1]["content"] == "look at \\xff\\xfe" and "caf\\xe9" in sent[0]["content"]


def test_a_broken_settings_file_is_one_clear_line(env, workspace):
    folder = os.path.join(env["HOME"], ".nanocoder")
    os.makedirs(folder)
    with open(os.path.join(folder, "settings.json"), "w") as f:
        f.write('{"model": ')
    with ScriptedServer(["unused"]) as s:
        result = nanocoder(s, "-p", "hi", env=env, cwd=workspace)
    assert result.returncode == 1 and s.requests == [] and "Traceback" not in result.stderr
    assert result.stderr.startswith("nanocoder: ") and "settings.json is unreadable" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
