"""Crash consistency: `nanocoder -p` runs continuing one session are killed with SIGKILL at random
moments. After every kill the session files are valid and resumable, no workspace file is
half-written, no temp file is left anywhere, and every turn that finished is in the session."""
import json
import os
import random
import signal
import subprocess

from history_rules import problems
from nanocoder.atomic import TEMP_NAME
from nanocoder.history import repair
from scripted import ScriptedServer
from test_cli import NANOCODER, env, sessions, workspace  # noqa: F401 (fixtures)

KILLS = int(os.environ.get("NANOCODER_KILLS", "30"))
PAYLOAD = 200_000


def version(n: int) -> str:
    return f"v{n}:" + str(n % 10) * PAYLOAD


def model(request):
    """Each turn writes data.txt in full, runs a command, then answers."""
    last = request["messages"][-1]
    turn = next(m["content"] for m in reversed(request["messages"]) if m["role"] == "user").split()[-1]
    if last["role"] == "user":
        return {"tool_calls": [{"name": "write_file", "arguments": {"file_path": "data.txt", "content": version(int(turn))}}]}
    if "Overwrote" in last["content"] or "Created" in last["content"]:
        return {"tool_calls": [{"name": "bash", "arguments": {"command": f"echo {turn} >> log.txt"}}]}
    return f"done {turn}"


def test_killed_runs_leave_valid_sessions_whole_files_and_no_temp_files(env, workspace):
    rng, finished, killed = random.Random(4711), [], 0
    env = {**env, "NANOCODER_MAX_CONTEXT": "10000000"}  # no compression: every turn stays in the session
    with ScriptedServer([model] * (KILLS * 4 + 10), chunk_size=8192) as server:
        for n in range(4 * KILLS):  # until KILLS runs were killed mid-run
            if killed == KILLS:
                break
            args = ["-c"] if sessions(env) else []
            proc = subprocess.Popen([str(NANOCODER), *args, "-p", f"turn {n}", "-y", "--base-url", server.url,
                                     "--api-key", "k"], env=env, cwd=workspace, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:  # a random moment (start-up, a request, a write, a save); every fourth run may finish
                proc.wait(timeout=rng.uniform(0.05, 1.0) if n % 4 else 60)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            err = proc.communicate()[1]
            if proc.returncode == 0:
                finished.append(n)
            else:
                assert proc.returncode == -signal.SIGKILL, err
            check(env, workspace, finished, clean=proc.returncode == 0)
    assert killed == KILLS and finished, f"{killed} kills, {len(finished)} finished: the moments are off"
    print(f"\ncrash test: {n} runs, {killed} killed mid-run, {len(finished)} finished, all sessions valid")


def check(env, workspace, finished, clean):
    """The state after a run. A kill between a temp file's link and its rename leaves that file (saves come
    after every changing call, so kills land there): a run that finishes must have swept every one."""
    files = sessions(env)
    assert len(files) <= 1  # one session goes on (a fork would be a second)
    for path in files:
        data = json.loads(path.read_text())  # never half-written
        assert problems(repair(data["messages"])) == []
        said = [m["content"] for m in data["messages"] if m["role"] == "user"]
        for n in finished:  # every finished turn is in the session
            assert any(s.endswith(f"turn {n}") for s in said), n
    data = workspace / "data.txt"
    if data.exists():
        text = data.read_text()
        assert text == version(int(text[1:text.index(":")])), "a half-written workspace file"
    left = [p for folder in (workspace, workspace.parent / "home" / ".nanocoder") for p in folder.rglob("*")
            if p.name.endswith(".tmp")]
    assert all(TEMP_NAME.fullmatch(p.name) for p in left), left  # only our own names, to be swept
    if clean:
        assert left == [], left
