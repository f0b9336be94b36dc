"""The streaming client: assembled replies, usage, and provider faults said in one clear line."""
import pytest

from nanocoder import events
from nanocoder.llm import LLM, LLMError


def test_text_reasoning_and_usage(server, llm):
    server.add({"content": "Hello world, streamed.", "reasoning": "thinking hard"})
    seen = []
    reply = llm.stream([{"role": "user", "content": "hi"}], on_event=seen.append)
    text = [e.text for e in seen if type(e) is events.Text]
    assert reply.content == "Hello world, streamed." and len(text) > 1 and "".join(text) == reply.content
    assert "".join(e.text for e in seen if type(e) is events.Reasoning) == "thinking hard" == reply.reasoning
    assert type(seen[0]) is events.Reasoning and len(seen) == len(text) + 2  # reasoning, in 2 pieces, first
    assert reply.finish_reason == "stop" and reply.prompt_tokens > 0 and reply.completion_tokens > 0
    assert server.requests[0]["stream_options"] == {"include_usage": True}


def test_tool_calls_are_assembled(server, llm):
    server.add({"tool_calls": [{"name": "read_file", "arguments": {"file_path": "a_long_file_name.py"}},
                               {"name": "glob", "arguments": {"pattern": "**/*.py"}}]})
    reply = llm.stream([{"role": "user", "content": "go"}], tools=[])
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [
        ("read_file", '{"file_path": "a_long_file_name.py"}'), ("glob", '{"pattern": "**/*.py"}')]
    assert len({c.id for c in reply.tool_calls}) == 2
    msg = reply.message()
    assert msg["role"] == "assistant" and msg["tool_calls"][1]["function"]["name"] == "glob"


@pytest.mark.parametrize("status, words", [
    (401, ["refused the API key", "OPENAI_API_KEY", "--api-key"]),
    (403, ["refused the API key"]),
    (404, ["model 'scripted' was not found at http://127.0.0.1"]),
    (400, ["answered 400", "bad things"]),
])
def test_status_errors_are_one_clear_line(server, llm, status, words):
    server.add({"status": status, "error": "bad things"})
    with pytest.raises(LLMError) as e:
        llm.stream([{"role": "user", "content": "hi"}])
    text = str(e.value)
    assert "\n" not in text and all(w in text for w in words)


def test_rate_limit_is_retried_by_the_sdk(server):
    server.add({"status": 429, "error": "slow down", "headers": {"Retry-After": "0"}}, "made it")
    llm = LLM("scripted", api_key="test", base_url=server.url, max_retries=2)
    assert llm.stream([{"role": "user", "content": "hi"}]).content == "made it"
    assert len(server.requests) == 2


def test_dropped_stream_is_an_error(server, llm):
    server.add({"content": "this answer will be cut off somewhere", "drop_after": 3})
    with pytest.raises(LLMError, match="stream|connection"):
        llm.stream([{"role": "user", "content": "hi"}])


def test_unreachable_server_and_missing_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError, match="127.0.0.1:9"):
        LLM("m", api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0).stream([{"role": "user", "content": "x"}])
    with pytest.raises(LLMError, match="no API key"):
        LLM("m", api_key="", base_url="http://127.0.0.1:9/v1").stream([])
