"""Property-based: whatever a session goes through (parallel and broken tool calls, provider
faults, dropped streams, compression in a small window, Ctrl+C while streaming or while tools
run, save and resume), every request the provider receives passes nanocoder.history's rules
and fits the context window. Hypothesis draws the sessions; HYPOTHESIS_EXAMPLES sets how many."""
import json
import os
import signal
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nanocoder import Agent
from nanocoder import events as ev
from nanocoder.context import SUMMARY_PROMPT, estimate
from history_rules import problems
from nanocoder.history import repair
from nanocoder.anthropic_api import AnthropicModel
from nanocoder.llm import LLM, LLMError
from scripted import DIALECTS, ScriptedServer
from scripted_anthropic import ScriptedAnthropic, rules
from nanocoder.session import Session
from nanocoder.tools.base import Tool

WINDOW = 8000
EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "60"))
RAN = {"examples": 0, "requests": 0, "Ctrl+C": 0, "provider errors": 0, "summaries": 0, "resumes": 0}


class Big(Tool):
    name = "big"
    description = "Prints n characters."
    parameters = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    read_only = True

    def execute(self, n):
        return ("line of output\n" * (n // 15 + 1))[:n]


class CtrlC(Tool):
    """Stands for a user pressing Ctrl+C while tools run: a real SIGINT to this process."""
    name = "ctrl_c"
    description = "Interrupts."
    read_only = True

    def __init__(self):
        self.stopped = threading.Event()

    def execute(self):
        # From another thread once this one waits, as a terminal's SIGINT reaches the main
        # thread while tools run; a signal sent by this thread itself can wait for it to end.
        self.stopped.clear()
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        self.stopped.wait(5)  # the agent's cancel() ends this wait
        return "not reached"

    def cancel(self):
        self.stopped.set()


ok_call = st.builds(lambda n, kimi: {"name": "big", "arguments": {"n": n}, **({"id": "functions.big:0"} if kimi else {})},
                   st.integers(10, 30_000), st.booleans())  # Kimi's ids repeat in every turn
bad_call = st.sampled_from([
    {"name": "big", "arguments": "{not json"}, {"name": "nope", "arguments": {}},
    {"name": "big", "arguments": {}}, {"name": "big", "arguments": {"n": "ten"}},
    {"name": "read_file", "arguments": {"file_path": "missing.txt"}}])
calls = st.builds(lambda calls, dialect, say: {"tool_calls": calls, "dialect": dialect, "content": say},
                  st.lists(st.one_of(ok_call, bad_call), min_size=1, max_size=4), st.sampled_from(sorted(DIALECTS)),
                  st.sampled_from(["", "Working on it."]))
fault = st.one_of(
    st.builds(lambda calls, n: {"tool_calls": calls, "drop_after": n},
              st.lists(ok_call, min_size=1, max_size=3), st.integers(1, 6)),
    st.sampled_from([{"status": 500, "error": "upstream"}, {"content": "partial", "error_after": 2}]))
ctrl_c = st.builds(lambda calls: {"tool_calls": [{"name": "ctrl_c", "arguments": {}}, *calls]},
                   st.lists(ok_call, max_size=2))
text = st.builds(lambda n: {"content": "answer " * n}, st.integers(0, 3000))  # long answers too
round_ = st.one_of(calls, calls, calls, text, fault, ctrl_c)  # a text ends the turn, so calls come first
turn = st.fixed_dictionaries({
    "rounds": st.lists(round_, max_size=5),
    "ctrl_c_while_streaming": st.sampled_from([False, False, False, True]),
    "resume_after": st.booleans(),
})


class Screen:
    """The agent's on_event; Ctrl+C on the first streamed text when asked to."""
    def __init__(self):
        self.ctrl_c = False

    def __call__(self, event):
        if isinstance(event, ev.Text) and self.ctrl_c:
            self.ctrl_c = False
            raise KeyboardInterrupt


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print("\nhistory properties:", ", ".join(f"{v} {k}" for k, v in RAN.items()))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(turns=st.lists(turn, min_size=1, max_size=4))
def test_every_request_is_valid_and_fits_the_window(provider, turns, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    plan = []
    Server, Model = (ScriptedServer, LLM) if provider == "openai" else (ScriptedAnthropic, AnthropicModel)

    def system_text(request) -> str:
        if provider == "openai":
            return request["messages"][0]["content"]
        return (request.get("system") or [{}])[0].get("text", "")

    def model(request):
        if system_text(request) == SUMMARY_PROMPT:
            return "Summary: big outputs were made. " * 20
        return plan.pop(0) if plan else "done"

    with Server([model] * 200) as server:
        llm = Model("scripted", api_key="k", base_url=server.url, max_retries=0)
        screen = Screen()
        agent = Agent(llm=llm, tools=[Big(), CtrlC()], on_event=screen, cwd=tmp_path, max_context=WINDOW)
        session = Session(model="scripted", cwd=str(tmp_path))
        for n, t in enumerate(turns):
            plan[:] = t["rounds"]
            screen.ctrl_c = t["ctrl_c_while_streaming"]
            try:
                agent.chat(f"task {n}")
            except KeyboardInterrupt:
                RAN["Ctrl+C"] += 1
            except LLMError as e:
                RAN["provider errors"] += 1
            if t["resume_after"]:
                RAN["resumes"] += 1
                session.messages = agent.messages
                session.save()
                agent = Agent(llm=llm, tools=[Big(), CtrlC()], on_event=screen, cwd=tmp_path, max_context=WINDOW)
                agent.messages = repair(Session.load(session.id).messages)
        requests = list(server.requests)
    RAN["examples"] += 1
    RAN["requests"] += len(requests)
    RAN["summaries"] += sum(system_text(r) == SUMMARY_PROMPT for r in requests)
    for i, request in enumerate(requests):
        if provider == "anthropic":  # the Messages API's rules; its window is counted by the agent as above
            assert rules(request) == [], f"request {i}"
            continue
        assert problems(request["messages"]) == [], f"request {i}"
        size = estimate(request["messages"]) + len(json.dumps(request.get("tools", []))) // 4
        assert size <= WINDOW, f"request {i} needs ~{size} tokens"
