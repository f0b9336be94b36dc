"""Every provider dialect and fault the README's Providers table lists, through the real openai
SDK against the scripted server. Each test names the row it covers."""
import json

import pytest

from nanocoder import Agent, events
from nanocoder.context import SUMMARY_PROMPT
from nanocoder.llm import LLM, LLMError
from scripted import DIALECTS, ScriptedServer
from nanocoder.tools.base import Tool
from conftest import assert_valid_history

CALLS = [{"name": "read_file", "arguments": {"file_path": "notes.txt"}},
         {"name": "glob", "arguments": {"pattern": "*.txt"}}]


def agent_in(tmp_path, llm, **kwargs):
    (tmp_path / "notes.txt").write_text("the secret word is parsnip\n")
    return Agent(llm=llm, cwd=tmp_path, **kwargs)


def tool_messages(request):
    return [m for m in request["messages"] if m["role"] == "tool"]


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_tool_call_dialect_runs_each_call_once(server, llm, tmp_path, dialect):
    server.add({"content": "Looking.", "tool_calls": CALLS, "dialect": dialect}, "done")
    assert agent_in(tmp_path, llm).chat("look") == "done"
    calls = server.requests[1]["messages"][-3]["tool_calls"]
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        (c["name"], c["arguments"]) for c in CALLS], "names or arguments doubled or lost"
    read, glob = tool_messages(server.requests[1])
    assert "parsnip" in read["content"] and "notes.txt" in glob["content"]


@pytest.mark.parametrize("written", [
    'Looking. <tool_call>{"name": "glob", "arguments": {"pattern": "*"}}</tool_call>',
    "a < b, and <tool",
])
def test_a_call_written_as_text_is_shown_never_run(server, llm, written):
    """The `<tool_call>` text dialect was removed for room (issue 21): a server that needs it wants its own
    tool parser on (vLLM: --enable-auto-tool-choice); what the model writes is text, shown as it is."""
    server.add(written)
    seen = []
    reply = llm.stream([{"role": "user", "content": "go"}], on_event=seen.append)
    assert "".join(e.text for e in seen) == written and reply.tool_calls == []


class Now(Tool):
    name = "now"
    description = "The time."
    parameters = {"type": "object", "properties": {}}
    read_only = True

    def execute(self):
        return "12:00"


@pytest.mark.parametrize("arguments", ["", None, "missing"])
def test_a_call_without_parameters_in_any_spelling(server, llm, tmp_path, arguments):
    call = {"name": "now"} if arguments == "missing" else {"name": "now", "arguments": arguments}
    server.add({"tool_calls": [call], "finish_reason": "stop"}, "it is noon")  # "stop" despite calls
    assert Agent(llm=llm, tools=[Now()], cwd=tmp_path).chat("time?") == "it is noon"
    sent = server.requests[1]["messages"]
    assert sent[-2]["tool_calls"][0]["function"]["arguments"] == "{}" and sent[-1]["content"] == "12:00"


def test_kimi_ids_repeated_across_turns_are_renamed_consistently(server, llm, tmp_path):
    kimi = {"tool_calls": [{"id": "functions.read_file:0", **CALLS[0]}]}
    server.add(kimi, "first", kimi, "second")
    agent = agent_in(tmp_path, llm)
    agent.chat("one")
    agent.chat("two")
    ids = [c["id"] for m in server.requests[3]["messages"] for c in m.get("tool_calls") or ()]
    assert ids == ["functions.read_file:0", "functions.read_file:1"]
    assert [m["tool_call_id"] for m in tool_messages(server.requests[3])] == ids
    # a history put in place of an agent's (as resume does) is read afresh, not trusted to be known
    other = agent_in(tmp_path, llm)
    server.add("hello", "hello again", kimi, "third")
    other.chat("hi")
    other.chat("hi again")
    other.messages = agent.messages[:5]  # the first turn, with functions.read_file:0
    other.chat("three")
    ids = [c["id"] for m in server.requests[-1]["messages"] for c in m.get("tool_calls") or ()]
    assert ids == ["functions.read_file:0", "functions.read_file:1"]


@pytest.mark.parametrize("usage_in", ["final", "every", "choice", "none"])
def test_usage_anywhere_or_nowhere_and_noise_between_chunks(server, llm, usage_in):
    server.add({"content": "Hello there, world.", "usage": {"prompt_tokens": 120, "completion_tokens": 7},
                "usage_in": usage_in, "keepalive": True, "parts": True})
    seen = []
    reply = llm.stream([{"role": "user", "content": "hi"}], on_event=seen.append)
    assert reply.content == "Hello there, world." and len(seen) > 1 and {type(e) for e in seen} == {events.Text}
    expected = (0, 0) if usage_in == "none" else (120, 7)
    assert (reply.prompt_tokens, reply.completion_tokens) == expected


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_is_shown_and_sent_back_under_its_own_name(server, llm, tmp_path, field):
    server.add({"reasoning": "I should read the notes.", "reasoning_field": field, "tool_calls": CALLS[:1]},
               "parsnip")
    events = []
    agent_in(tmp_path, llm, on_event=events.append).chat("what word?")
    assert "".join(e.text for e in events if type(e).__name__ == "Reasoning") == "I should read the notes."
    assert server.requests[1]["messages"][2][field] == "I should read the notes."


def test_unknown_fields_on_a_call_are_echoed_back(server, llm, tmp_path):
    signature = {"google": {"thought_signature": "sig-123"}}
    server.add({"tool_calls": [{**CALLS[0], "extra_content": signature}]}, "ok")
    agent_in(tmp_path, llm).chat("go")
    assert server.requests[1]["messages"][2]["tool_calls"][0]["extra_content"] == signature


@pytest.mark.parametrize("fault", [
    {"status": 429, "headers": {"Retry-After": "1"}}, {"status": 408}, {"status": 409},
    {"status": 500}, {"status": 503}, {"reset": True}])
def test_transient_faults_are_retried_visibly(server, fault):
    server.add({"error": "busy", "headers": {"retry-after-ms": "50"}, **fault}, "made it")
    llm, seen = LLM("scripted", api_key="k", base_url=server.url, max_retries=2), []
    assert llm.stream([{"role": "user", "content": "hi"}], on_event=seen.append).content == "made it"
    lines = [e.message for e in seen if type(e) is events.Retry]
    assert len(lines) == 1 and "retrying in" in lines[0] and lines[0].endswith("(retry 1 of 2)"), lines
    if fault.get("status") == 429:
        assert lines[0].startswith("rate limited by the provider (429); retrying")
    else:
        assert f"answered {fault['status']}; retrying" in lines[0] if "status" in fault else "failed; retrying" in lines[0]
    if "Retry-After" in fault.get("headers", {}):
        assert "retrying in 1.0 s" in lines[0]  # honoured
    elif "status" in fault:
        assert "retrying in 0.1 s" in lines[0]  # retry-after-ms: 50


def test_a_fault_that_persists_ends_in_one_clear_line(server):
    server.add(*[{"status": 503, "error": "overloaded", "headers": {"retry-after-ms": "10"}}] * 3)
    seen = []
    with pytest.raises(LLMError) as e:
        LLM("scripted", api_key="k", base_url=server.url, max_retries=2).stream([], on_event=seen.append)
    assert [e.message[-12:] for e in seen] == ["(retry 1 of 2)"[-12:], "(retry 2 of 2)"[-12:]]
    assert str(e.value) == "the provider answered 503: overloaded; gave up after 2 retries"


def test_a_stream_cut_mid_call_never_runs_it_and_is_asked_again(server, tmp_path):
    ran = []

    class Record(Now):
        def execute(self):
            ran.append(1)
            return "12:00"

    cut = {"content": "Let me check.", "tool_calls": [{"name": "now", "arguments": {}}, CALLS[0]], "drop_after": 6}
    server.add(cut, {"tool_calls": [{"name": "now", "arguments": {}}]}, "noon")
    llm, lines = LLM("scripted", api_key="k", base_url=server.url, max_retries=1), []
    agent = Agent(llm=llm, tools=[Record()], cwd=tmp_path, on_event=lambda e: type(e).__name__ == "Retry" and lines.append(e))
    assert agent.chat("time?") == "noon"
    assert ran == [1] and len(lines) == 1 and "broke off" in lines[0].message and lines[0].discarded


def test_a_stream_cut_with_no_retries_left_is_a_clear_error_and_a_valid_history(server, llm, tmp_path):
    server.add({"tool_calls": CALLS, "drop_after": 5})
    agent = agent_in(tmp_path, llm)
    with pytest.raises(LLMError, match="broke off|ended before"):
        agent.chat("look")
    assert agent.messages[-1] == {"role": "user", "content": "look"}
    assert_valid_history(agent.messages)


def test_a_stalled_stream_times_out(server):
    server.add({"content": "and then nothing more for a long time", "stall_after": 3, "stall": 30})
    llm = LLM("scripted", api_key="k", base_url=server.url, max_retries=0, timeout=0.5)
    with pytest.raises(LLMError, match="sent nothing for 0.5 s"):  # not the 30 s the server stays silent
        llm.stream([{"role": "user", "content": "hi"}])


def test_nanocoder_timeout_sets_the_read_timeout(monkeypatch):
    from nanocoder.config import Config
    assert Config.load(env={"NANOCODER_TIMEOUT": "2.5"}).timeout == 2.5


def test_an_error_object_inside_the_stream_is_a_clear_error(server, llm):
    server.add({"content": "partial answer that fails", "error_after": 3, "error": "model crashed"})
    with pytest.raises(LLMError, match="mid-stream: model crashed"):
        llm.stream([{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("status", [401, 403])
def test_a_bad_key_is_not_retried(server, status):
    server.add({"status": status, "error": "invalid key"})
    seen = []
    with pytest.raises(LLMError, match="API key"):
        LLM("scripted", api_key="k", base_url=server.url, max_retries=3).stream([], on_event=seen.append)
    assert len(server.requests) == 1 and seen == []


def test_context_length_exceeded_compresses_and_retries_once(server, llm, tmp_path):
    too_long = {"status": 400, "error": "This model's maximum context length is 8192 tokens."}

    def summary(request):
        assert request["messages"][0]["content"] == SUMMARY_PROMPT
        return "We talked about parsnips."
    agent = agent_in(tmp_path, llm)
    server.add("hello", too_long, summary, "answered after compressing")
    agent.chat("first")
    assert agent.chat("second") == "answered after compressing"
    assert "parsnips" in json.dumps(server.requests[3]["messages"])
    server.add(too_long, summary, too_long)  # still too long after compressing: one clear error
    with pytest.raises(LLMError, match="longer than the model's window"):
        agent.chat("third")


def test_a_provider_that_rejects_stream_options_is_asked_without_it_from_then_on(tmp_path):
    with ScriptedServer(["one", "two"], reject=("stream_options",)) as server:
        llm = LLM("strict", api_key="k", base_url=server.url, max_retries=0)
        agent = Agent(llm=llm, cwd=tmp_path)
        assert agent.chat("a") == "one" and agent.chat("b") == "two"
    assert [("stream_options" in r) for r in server.requests] == [True, False, False]


def test_when_compressing_frees_nothing_the_same_request_is_not_sent_again(server, llm, tmp_path):
    server.add({"status": 400, "error": "This model's maximum context length is 8192 tokens."}, "unused")
    with pytest.raises(LLMError, match="compressing freed nothing; try /compact, a larger NANOCODER_MAX_CONTEXT"):
        agent_in(tmp_path, llm).chat("x" * 100)
    assert len(server.requests) == 1
