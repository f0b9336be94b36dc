"""The prompt-cache workloads of benchmarks/run.py (section `cache`), for nanocoder and corecoder 0.8.0.

Each agent talks to its own scripted server on 127.0.0.1, which logs every request body. The rules,
applied to both agents alike:
- A request is serialised as json.dumps(tools) + json.dumps(messages) without the closing bracket:
  tools first, as providers place them, and a request that only appends messages then starts with
  the whole of the one before it. A request without tools (a summary) has tools [].
- "reuse" of a request: the prefix it shares with the previous request in the server's log (summary
  requests included), divided by the previous request's length; the first request has none.
- a "break": a request that does not start with the whole previous request (reuse < 100%).
- "billed": input only, characters / 4, the shared prefix at a tenth (the first request in full).
Two bounds come from the same log: a request's newest round (its last assistant message and what
follows) is new, so it is billed in full once (the "floor") and lies past any point where the request
departs from the previous one, which caps the mean reuse (the "ceiling", see measure()).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROUNDS = 45  # reads in the long turn; then one more request for the answer
WINDOW = 16_000
CORECODER = "corecoder==0.8.0"
CORECODER_SUMMARY = "Compress this conversation into a brief summary."  # corecoder/context.py, 0.8.0
SUMMARY = ("Read src/mod_01.py to the latest module; each defines handlers that scale a value and log it. "
           "No file was changed, no command run, no error open. Next: read the following module. ") * 3
WORDS = "value result index count total scale offset name path data item limit".split()

# corecoder's REPL loop, without the terminal: one Agent, one chat() a turn (run with its venv's Python)
CORECODER_TURNS = """
import json, sys
from pathlib import Path
from corecoder.agent import Agent
from corecoder.llm import LLM
from corecoder.permissions import Permission
from corecoder.tools import ALL_TOOLS
url, turns = sys.argv[1], json.loads(sys.argv[2])
agent = Agent(LLM("scripted", "bench", url, temperature=0.0, max_tokens=4096), tools=list(ALL_TOOLS),
              permission=Permission(allow_all=True))
for new_file, prompt in turns:
    if new_file:
        Path(new_file).write_text("new\\n")
    agent.chat(prompt)
"""


def module(n: int) -> str:
    """About 6 KB of Python, different for every n."""
    lines, size = [], 0
    while size < 6_000:
        i = len(lines)
        line = (f"def handler_{n}_{i}({WORDS[i % 12]}):" if i % 6 == 0 else
                f"    {WORDS[(i * n) % 12]} = {WORDS[(i + n) % 12]}_{i} * {n * 31 + i} + {i * 7 % 97}")
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


def scripted(is_summary, reads):
    """A reply callable: a summary when asked for one, else read the next file of `reads`, then answer."""
    done, summaries, lock = [0], [0], threading.Lock()

    def reply(body):
        with lock:
            if is_summary(body):  # each one different, as a real model's would be
                summaries[0] += 1
                return f"Summary {summaries[0]}: {SUMMARY}"
            done[0] += 1
            n = done[0]
        if n <= len(reads):
            return {"content": f"Reading {reads[n - 1]}.",
                    "tool_calls": [{"name": "read_file", "arguments": {"file_path": reads[n - 1]}}]}
        return "All the modules are read; every handler scales a value and logs it."
    return reply


def system_starts(text):
    return lambda body: (body.get("messages") or [{}])[0].get("content", "").startswith(text)


def serve(reply, drive):
    """drive(url) against a fresh scripted server answering every request with reply; the bodies sent."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from scripted import ScriptedServer  # the tests' scripted server
    with ScriptedServer([reply] * 1_000) as server:
        drive(server.url)
        return server.requests


def env(home, **extra):
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "NANOCODER_", "CORECODER_"))}
    return dict(keep, HOME=home, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1", PROMPT_TOOLKIT_NO_CPR="1", **extra)


def run(command, cwd, environment):
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    if done.returncode:
        raise RuntimeError(f"{Path(command[0]).name} exited {done.returncode}: {done.stderr.strip()[-500:]}")


def install_corecoder(folder: Path):
    """The Python of a new virtualenv holding corecoder 0.8.0, or the reason there is none."""
    venv = folder / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        done = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--retries", "1", CORECODER],
                              capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        return None, str(e)
    if done.returncode:
        return None, (done.stderr.strip().splitlines() or ["pip failed"])[-1]
    return venv / "bin/python", None


# --- the workloads: each returns (the request bodies, how to tell a summary request) -------------

def long_turn(agent, python=None):
    """Workload A: one -p turn of 45 rounds, each reading another 6 KB file, under a 16,000-token window."""
    from nanocoder.context import SUMMARY_PROMPT
    reads = [f"src/mod_{n:02}.py" for n in range(1, ROUNDS + 1)]
    prompt = f"Read the {ROUNDS} modules in src/ one by one, in order, then say what they do."
    with tempfile.TemporaryDirectory(prefix="nanocoder-cache-") as tmp:
        work = Path(tmp, "work")
        (work / "src").mkdir(parents=True)
        for n, path in enumerate(reads, 1):
            (work / path).write_text(module(n))
        if agent == "nanocoder":
            summary = system_starts(SUMMARY_PROMPT)
            command = lambda url: [str(Path(sys.executable).parent / "nanocoder"), "-p", prompt, "-y"]
            extra = lambda url: {"OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": url, "NANOCODER_MODEL": "scripted",
                                 "NANOCODER_MAX_CONTEXT": str(WINDOW)}
        else:
            summary = system_starts(CORECODER_SUMMARY)
            command = lambda url: [str(python.parent / "corecoder"), "-p", prompt, "--yes"]
            extra = lambda url: {"CORECODER_API_KEY": "bench", "OPENAI_BASE_URL": url, "CORECODER_MODEL": "scripted",
                                 "CORECODER_MAX_CONTEXT": str(WINDOW)}
        bodies = serve(scripted(summary, reads), lambda url: run(command(url), work, env(tmp, **extra(url))))
    return bodies, summary


def repo_turns(agent, python=None):
    """Workload B: three turns continued in a git repository that gains an untracked file before
    each later turn. nanocoder: one Agent (as the REPL), or "nanocoder -p" then twice "-p -c"
    (agent "nanocoder -c"); corecoder, which has no --continue: one Agent (as its REPL)."""
    from nanocoder.context import SUMMARY_PROMPT
    turns = [(None, "Turn 1: read README.md and say what it is."),
             ("notes_2.txt", "Turn 2: read notes_2.txt."), ("notes_3.txt", "Turn 3: read notes_3.txt.")]
    reads = ["README.md", "notes_2.txt", "notes_3.txt"]
    summary = system_starts(CORECODER_SUMMARY if agent == "corecoder" else SUMMARY_PROMPT)
    with tempfile.TemporaryDirectory(prefix="nanocoder-cache-") as tmp:
        work = Path(tmp, "repo")
        work.mkdir()
        (work / "README.md").write_text("A small project.\n")
        quiet = ["-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "commit.gpgsign=false"]
        for git in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "start"]):
            subprocess.run(["git", *quiet, *git], cwd=work, check=True, capture_output=True)
        # one read, then the answer, each turn: the callable alternates by what the last message is
        reply = lambda body: (SUMMARY if summary(body) else
                              {"content": "Reading.", "tool_calls": [{"name": "read_file", "arguments": {
                                  "file_path": reads[sum(m["role"] == "user" for m in body["messages"]) - 1]}}]}
                              if body["messages"][-1]["role"] == "user" else "It says what it says.")
        if agent == "corecoder":
            drive = lambda url: run([str(python), "-c", CORECODER_TURNS, url, json.dumps(turns)], work,
                                    env(tmp, CORECODER_MODEL="scripted"))
        elif agent == "nanocoder -c":
            def drive(url):
                for i, (new_file, prompt) in enumerate(turns):
                    if new_file:
                        (work / new_file).write_text("new\n")
                    run([str(Path(sys.executable).parent / "nanocoder"), "-p", prompt, "-y", *(["-c"] if i else [])],
                        work, env(tmp, OPENAI_API_KEY="bench", OPENAI_BASE_URL=url, NANOCODER_MODEL="scripted"))
        else:
            def drive(url):
                from nanocoder.agent import Agent
                from nanocoder.llm import LLM
                bot = Agent(LLM("scripted", api_key="bench", base_url=url, max_retries=0), cwd=work)
                for new_file, prompt in turns:
                    if new_file:
                        (work / new_file).write_text("new\n")
                    bot.chat(prompt)
        bodies = serve(reply, drive)
    return bodies, summary


# --- the measure ----------------------------------------------------------------------------

def serialised(body) -> str:
    return json.dumps(body.get("tools") or []) + json.dumps(body["messages"])[:-1]


def shared(a: str, b: str) -> int:
    """Length of the common prefix of a and b (binary search over C-speed slice compares)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def measure(bodies, is_summary) -> dict:
    texts = [serialised(b) for b in bodies]
    reuse, breaks, billed = [], [], len(texts[0]) / 4 if texts else 0
    for i in range(1, len(texts)):
        common = shared(texts[i], texts[i - 1])
        reuse.append(common / len(texts[i - 1]))
        if common < len(texts[i - 1]):
            breaks.append(i)
        billed += (len(texts[i]) - common) / 4 + common / 40
    # With L the lengths and R the newest rounds' lengths, L[i] >= shared[i] + R[i] for every request,
    # so the loss L[i-1] - shared[i] >= L[i-1] - L[i] + R[i]; summed, the losses are at least sum(R)
    # less the largest request, and each is at most its reuse shortfall times the largest request.
    rounds = [len(t) - len(serialised({**b, "messages": b["messages"][:_last_assistant(b["messages"])]}))
              for b, t in zip(bodies[1:], texts[1:])]
    largest = max(map(len, texts), default=1)
    whole = {}  # tool_call_id -> the longest text of its result in any request
    for b in bodies:
        for m in b["messages"]:
            if m.get("role") == "tool":
                whole[m.get("tool_call_id")] = max(whole.get(m.get("tool_call_id"), 0), len(m.get("content") or ""))
    return {"requests": len(bodies), "summaries": sum(map(is_summary, bodies)), "reuse": sum(reuse) / max(1, len(reuse)),
            "breaks": breaks, "billed": billed, "rewrites": sum(not is_summary(bodies[i]) and not
                                                                is_summary(bodies[i - 1]) for i in breaks), "bodies": bodies, "is_summary": is_summary,
            "ceiling": 1 - (sum(rounds) - largest) / (max(1, len(rounds)) * largest), "floor": sum(rounds) / 4,
            "whole": sum(n >= 6_000 for n in whole.values()), "reads": len(whole)}


def _last_assistant(messages) -> int:
    return max((k for k, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages))


def why(result, i) -> str:
    """What request i changed: the first message it does not repeat from the previous request (from
    the last one before a summary, for the request right after it)."""
    bodies, is_summary = result["bodies"], result["is_summary"]
    if is_summary(bodies[i]):
        return f"the summary request itself: its own system prompt, no tools, {len(serialised(bodies[i])):,} chars"
    before = i - 1 - is_summary(bodies[i - 1])
    kind = "after the summary, against the request before it" if before < i - 1 else "against the previous request"
    old, new = bodies[before], bodies[i]
    if (old.get("tools") or []) != (new.get("tools") or []):
        return f"{kind}: the tools differ"
    a, b = old["messages"], new["messages"]
    k = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), None)
    if k is None:
        return f"{kind}: drops messages {len(b)}.. of {len(a)}"
    first, then = json.dumps(a[k]), json.dumps(b[k])
    at = shared(first, then)
    return (f"{kind}: message {k} of {len(a)} ({a[k].get('role')} → {b[k].get('role')}) differs from char {at}: "
            f"{_text(a[k])} → {_text(b[k])}; kept {shared(serialised(old), serialised(new)):,} of "
            f"{len(serialised(old)):,} chars")


def _text(m) -> str:
    content = str(m.get("content") or "")
    head = re.sub(r"\s+", " ", content[:40])
    return f"{len(content):,} chars {head!r}"
