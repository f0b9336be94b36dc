"""Hostile input through the whole agent (hypothesis): odd Unicode and undecodable bytes in file
names, arguments and text; whatever the model sends, no exception escapes Agent.chat, the history
stays valid, and it can be sent and saved as UTF-8 JSON."""
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nanocoder import Agent
from history_rules import problems
from nanocoder.anthropic_api import AnthropicModel
from nanocoder.llm import LLM, LLMError
from scripted import ScriptedServer
from scripted_anthropic import ScriptedAnthropic, rules
from nanocoder.session import Session

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "40"))
odd = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["\ud800", "\udcff", "a\x00b", "..", "/", "~", "\\xff", "\u202e", "😀" * 3])
names = st.sampled_from(["read_file", "glob", "grep", "write_file", "edit_file", "bash", "nope", ""])
value = st.recursive(odd | st.integers() | st.none() | st.booleans(),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd, inner, max_size=3), max_leaves=6)
arguments = st.dictionaries(st.sampled_from(["file_path", "pattern", "path", "content", "old_string", "new_string",
                                             "command", "offset", "include"]), value, max_size=4)
raw = st.sampled_from(['{"file_path": "\\ud800"}', '{"pattern": "\\udcff*"}', "[" * 5000 + "]" * 5000, "{bad",
                       '"just a string"', "null"])
call = st.builds(lambda n, a: {"name": n, "arguments": a}, names, arguments | raw)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rounds=st.lists(st.lists(call, min_size=1, max_size=3), max_size=3), text=odd,
       filenames=st.lists(st.binary(min_size=1, max_size=6), max_size=3))
def test_nothing_escapes_chat_and_the_history_stays_sendable(provider, rounds, text, filenames,
                                                             tmp_path_factory):
    work = tmp_path_factory.mktemp("work")
    for name in filenames:
        try:
            (work / os.fsdecode(name.replace(b"/", b"_").replace(b"\0", b"_"))).write_bytes(b"\xff\xfe" + name)
        except OSError:
            pass  # ".", "..": not a file name
    replies = [{"tool_calls": calls, "content": text if text.isprintable() else ""} for calls in rounds] + ["done"]
    Server, Model = (ScriptedServer, LLM) if provider == "openai" else (ScriptedAnthropic, AnthropicModel)
    with Server(replies) as server:
        agent = Agent(llm=Model("scripted", api_key="k", base_url=server.url, max_retries=0), cwd=work)
        agent.workspace.sandbox_policy = "read-only"  # whatever bash is asked to do, it changes nothing
        try:
            agent.chat(text)
        except LLMError:
            pass  # a provider-side refusal is a clear error, not a crash
    assert problems(agent.messages) == []
    for i, request in enumerate(server.requests if provider == "anthropic" else ()):
        assert rules(request) == [], f"request {i}"
    json.dumps(agent.messages, ensure_ascii=False).encode("utf-8")  # no lone surrogate left
    home = os.environ.get("HOME")
    os.environ["HOME"] = str(work)  # hypothesis runs the body many times: no monkeypatch fixture here
    try:
        Session(model="m", cwd=str(work), messages=agent.messages).save()
    finally:
        os.environ["HOME"] = home
