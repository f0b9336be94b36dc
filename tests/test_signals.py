"""SIGTERM and SIGHUP stop a turn like Ctrl+C (the running command killed, the turn saved), then nanocoder
exits 143 or 129; a second signal while it shuts down ends it with the same code, never a traceback. The REPL
runs in a real pty, -p as a plain subprocess; the scripted model runs in its own process (no forkpty from a
threaded test process)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest

NANOCODER = Path(sys.executable).parent / "nanocoder"
SLOW = "touch started; sleep 60"  # the test waits for the file: the command is running when the signal comes


@pytest.fixture
def setup(tmp_path):
    """(url, env, work): a scripted model (its own process) whose first reply runs SLOW, in a clean HOME."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([{"content": "Running it.", "tool_calls": [
        {"name": "bash", "arguments": {"command": SLOW}}]}, "Done."]))
    model = subprocess.Popen([sys.executable, Path(__file__).with_name("scripted.py"), replies],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = model.stdout.readline().split()[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_"))}
    env.update(HOME=str(home), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", NO_PROXY="127.0.0.1")
    yield url, env, work
    model.terminate()
    model.wait()


def wait_for(path: Path, proc_alive):
    while not path.exists():  # an event, not a time: the file appears once the command runs
        assert proc_alive(), "nanocoder ended before the command ran"
        time.sleep(0.05)


def saved_turn(env) -> list:
    [path] = (Path(env["HOME"]) / ".nanocoder" / "sessions").glob("*.json")
    messages = json.loads(path.read_text())["messages"]
    said = {k: v for k, v in messages[1].items() if k != "checkpoint"}  # the REPL marks it for /rewind
    assert said == {"role": "user", "content": "run the slow thing"}
    calls = [c["function"]["arguments"] for m in messages for c in m.get("tool_calls") or []]
    assert calls and SLOW in calls[0]  # the call the model made, and an answer for it
    assert any(m["role"] == "tool" for m in messages)
    return messages


def repl(url, env, work):
    child = pexpect.spawn(str(NANOCODER), ["--base-url", url, "--api-key", "k", "-m", "scripted", "-y"],
                          env=env, cwd=str(work), encoding="utf-8", timeout=30, dimensions=(24, 100))
    child.expect_exact("›")
    child.sendline("run the slow thing")
    wait_for(work / "started", child.isalive)
    return child


def ended(child) -> tuple:
    child.expect(pexpect.EOF)
    output = child.before
    child.close()
    return child.exitstatus, child.signalstatus, output


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_the_repl_saves_the_turn_and_exits_with_the_signals_code(setup, sig, code):
    url, env, work = setup
    child = repl(url, env, work)
    child.kill(sig)
    status, killed_by, output = ended(child)
    assert (status, killed_by) == (code, None), output
    assert "Traceback" not in output and "Exception ignored" not in output, output
    saved_turn(env)


def test_a_second_sigterm_during_shutdown_ends_quietly_with_the_same_code(setup):
    url, env, work = setup
    child = repl(url, env, work)
    child.kill(signal.SIGTERM)
    child.expect_exact("interrupted")  # the first is being handled: the command was stopped
    child.kill(signal.SIGTERM)
    status, killed_by, output = ended(child)
    assert (status, killed_by) == (143, None), output
    assert "Traceback" not in output and "Exception ignored" not in output, output


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_one_shot_saves_the_turn_and_exits_with_the_signals_code(setup, sig, code):
    url, env, work = setup
    proc = subprocess.Popen([str(NANOCODER), "--base-url", url, "--api-key", "k", "-m", "scripted", "-y",
                             "-p", "run the slow thing"], env=env, cwd=work, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(work / "started", lambda: proc.poll() is None)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "nanocoder: interrupted", err
    assert out == ""
    saved_turn(env)


def test_one_shot_ends_quietly_on_a_second_sigterm(setup):
    url, env, work = setup
    proc = subprocess.Popen([str(NANOCODER), "--base-url", url, "--api-key", "k", "-m", "scripted", "-y",
                             "-p", "run the slow thing", "--output-format", "stream-json"], env=env, cwd=work,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(work / "started", lambda: proc.poll() is None)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def one_shot_into(stdout, tmp_path, answer):
    """-p with its stdout going to this file object; the answer is `answer`."""
    from scripted import ScriptedServer
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_"))}
    env.update(HOME=str(tmp_path), NO_PROXY="127.0.0.1")
    with ScriptedServer() as server:
        server.add(answer)
        return subprocess.run([str(NANOCODER), "--base-url", server.url, "--api-key", "k", "-m", "scripted",
                               "-p", "hi"], env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=stdout,
                              stderr=subprocess.PIPE, text=True, timeout=30)


def test_a_closed_stdout_ends_quietly(tmp_path):
    read, write = os.pipe()
    os.close(read)  # `| head -1` that has already left
    with os.fdopen(write, "w") as closed:
        run = one_shot_into(closed, tmp_path, "line\n" * 50_000)
    assert run.returncode == 0 and run.stderr == "", run.stderr


def test_a_full_disk_under_stdout_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        run = one_shot_into(full, tmp_path, "the answer")
    assert run.returncode == 1 and run.stderr.strip().splitlines() == \
        ["nanocoder: cannot write the output: No space left on device"], run.stderr
