"""The scripted server, checked through the real openai SDK: what the other tests and --demo stand on."""
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionChunk

from scripted import ScriptedServer

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client(server):
    return OpenAI(api_key="test", base_url=server.url, max_retries=0)


def stream(client, **extra):
    return list(client.chat.completions.create(model="scripted-model", messages=USER, stream=True, **extra))


def test_text_streams_in_chunks_with_usage(server, client):
    server.add("Hello world, this reply arrives in pieces.")
    chunks = stream(client, stream_options={"include_usage": True})
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3 and "".join(pieces) == "Hello world, this reply arrives in pieces."
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].object == "chat.completion.chunk"
    assert {c.model for c in chunks} == {"scripted-model"}  # echoes the request's model
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == len(json.dumps(USER)) // 4
    assert chunks[-1].usage.total_tokens == chunks[-1].usage.prompt_tokens + chunks[-1].usage.completion_tokens > 0


def test_no_usage_chunk_unless_asked_and_usage_override(server, client):
    server.add("plain", {"content": "counted", "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
    assert all(c.usage is None and c.choices for c in stream(client))
    usage = stream(client, stream_options={"include_usage": True})[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (7, 3, 10)


def test_two_tool_calls_stream_and_reassemble(server, client):
    server.add({"tool_calls": [{"name": "read_file", "arguments": {"file_path": "a_rather_long_name.py"}},
                               {"name": "bash", "arguments": '{"command": "ls -la"}', "id": "mine"}]})
    calls, finish = {}, None
    for chunk in stream(client, tools=[]):
        for frag in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(frag.index, {"id": None, "name": "", "arguments": "", "pieces": 0})
            call["id"] = call["id"] or frag.id
            call["name"] += frag.function.name or ""
            call["arguments"] += frag.function.arguments or ""
            call["pieces"] += 1
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and sorted(calls) == [0, 1]
    assert calls[0]["name"] == "read_file" and json.loads(calls[0]["arguments"]) == {"file_path": "a_rather_long_name.py"}
    assert calls[1]["name"] == "bash" and json.loads(calls[1]["arguments"]) == {"command": "ls -la"}
    assert calls[0]["id"].startswith("call_") and calls[1]["id"] == "mine"
    assert calls[0]["pieces"] > 2  # arguments arrive in fragments, as from a real provider


def test_call_ids_are_unique_across_requests(server, client):
    one_call = {"tool_calls": [{"name": "glob", "arguments": {}}]}
    server.add(one_call, one_call)
    ids = [f.id for _ in range(2) for c in stream(client) for f in c.choices[0].delta.tool_calls or [] if f.id]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_reasoning_arrives_before_content(server, client):
    server.add({"reasoning": "let me think about it", "content": "42"})
    order = []
    for chunk in stream(client):
        delta = chunk.choices[0].delta
        if getattr(delta, "reasoning_content", None):
            order.append(("reasoning", delta.reasoning_content))
        if delta.content:
            order.append(("content", delta.content))
    assert "".join(text for kind, text in order if kind == "reasoning") == "let me think about it"
    assert order[-1] == ("content", "42") and [k for k, _ in order].count("content") == 1


def test_status_errors_become_sdk_exceptions(server, client):
    server.add({"status": 429, "error": "slow down", "headers": {"Retry-After": "7"}},
               {"status": 401, "error": "bad key"})
    with pytest.raises(openai.RateLimitError) as e:
        stream(client)
    assert e.value.response.headers["retry-after"] == "7" and e.value.body["message"] == "slow down"
    with pytest.raises(openai.AuthenticationError, match="bad key"):
        client.chat.completions.create(model="m", messages=USER)
    with pytest.raises(openai.BadRequestError, match="no reply left"):
        stream(client)
    assert len(server.requests) == 3  # no retries: every answer was final


def test_dropped_stream_raises_connection_error(server, client):
    server.add({"content": "this answer will be cut off somewhere in the middle", "drop_after": 3})
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="m", messages=USER, stream=True):
            received.append(chunk)
    assert len(received) == 3 and not any(c.choices[0].finish_reason for c in received)


def test_callable_reply_sees_the_request(server, client):
    server.add(lambda body: "echo: " + body["messages"][-1]["content"],
               lambda body: {"content": f"{len(body['messages'])} messages"},
               lambda body: 1 / 0)
    text = "".join(c.choices[0].delta.content or "" for c in stream(client))
    assert text == "echo: hi"
    reply = client.chat.completions.create(model="m", messages=USER * 3)
    assert reply.choices[0].message.content == "3 messages"
    with pytest.raises(openai.BadRequestError, match="ZeroDivisionError"):  # a readable failure
        stream(client)


def test_requests_are_recorded_in_order(server, client):
    tools = [{"type": "function", "function": {"name": "glob", "description": "find files",
                                               "parameters": {"type": "object", "properties": {}}}}]
    server.add("one", "two")
    stream(client, tools=tools)
    client.chat.completions.create(model="second", messages=USER + [{"role": "assistant", "content": "one"}])
    first, second = server.requests
    assert first["tools"] == tools and first["messages"] == USER and first["stream"] is True
    assert second["model"] == "second" and second["messages"][-1] == {"role": "assistant", "content": "one"}
    assert "tools" not in second


def test_non_streaming_create(server, client):
    server.add({"content": "Done.", "tool_calls": [{"name": "glob", "arguments": {"pattern": "*.py"}}]},
               {"content": "cut", "finish_reason": "length"})
    reply = client.chat.completions.create(model="m", messages=USER)
    msg = reply.choices[0].message
    assert reply.object == "chat.completion" and reply.model == "m" and msg.content == "Done."
    assert reply.choices[0].finish_reason == "tool_calls" and reply.usage.total_tokens > 0
    assert msg.tool_calls[0].function.name == "glob" and json.loads(msg.tool_calls[0].function.arguments) == {"pattern": "*.py"}
    assert client.chat.completions.create(model="m", messages=USER).choices[0].finish_reason == "length"


@pytest.mark.parametrize("dialect", ["openai", "deepseek"])
def test_cached_tokens_in_each_dialects_field(server, client, dialect):
    server.add({"content": "cached", "usage": {"prompt_tokens": 100}, "cached_tokens": 80, "cache_dialect": dialect})
    usage = stream(client, stream_options={"include_usage": True})[-1].usage
    if dialect == "openai":
        assert usage.prompt_tokens_details.cached_tokens == 80
    else:
        assert (usage.model_extra["prompt_cache_hit_tokens"], usage.model_extra["prompt_cache_miss_tokens"]) == (80, 20)


def test_a_raw_event_replaces_one_in_the_stream(server):
    server.add({"content": "abcdefgh" * 3, "raw_after": 2, "raw": b"data: not json \xff\n\n"})
    with openai.OpenAI(api_key="t", base_url=server.url, max_retries=0).post(
            "/chat/completions", body={"model": "m", "messages": USER, "stream": True}, cast_to=object,
            stream=True, stream_cls=openai.Stream[object]) as s:
            body = s.response.read()  # a role chunk, three of content, the finish, [DONE]: one replaced
    assert body.count(b"data: ") == 6 and b"data: not json \xff\n\n" in body
    assert body.index(b"not json") > body.index(b'"abcdefgh"') and b'"abcdefgh"' in body.split(b"not json")[1]


@pytest.mark.parametrize("body, content_type", [("<html>busy</html>", "text/html"), ("", "application/json"),
                                                 ("data: [DONE]\n\n", "text/event-stream")])
def test_a_body_instead_of_a_stream(server, body, content_type):
    server.add({"body": body, "content_type": content_type})
    response = openai.OpenAI(api_key="t", base_url=server.url, max_retries=0).post(
        "/chat/completions", body={"model": "m", "messages": USER, "stream": True}, cast_to=object,
        stream=True, stream_cls=openai.Stream[object]).response
    assert response.status_code == 200 and response.headers["content-type"] == content_type
    assert response.read().decode() == body


def test_delay_streams_each_chunk_as_an_event(server, client):
    server.add({"content": "x" * 32, "delay": 0.02})  # role chunk, 4 content chunks, finish chunk
    assert len(stream(client)) == 6


def test_models_and_raw_post(server, client):
    assert [m.id for m in client.models.list()] == ["scripted"]
    # The path nanocoder.llm takes: a plain dict body, no per-message transform by the SDK, and
    # the event stream read line by line from the open response the SDK's Stream holds.
    server.add("raw", "raw too")
    body = {"model": "m", "messages": USER, "stream": True}
    with client.post("/chat/completions", body=body, cast_to=object, stream=True,
                     stream_cls=openai.Stream[object]) as s:
        lines = list(s.response.iter_lines())
    as_dicts = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert lines[1::2] == [""] * (len(lines) // 2) and lines[-2] == "data: [DONE]"  # one data line per event
    assert all(type(c) is dict for c in as_dicts) and as_dicts[1]["choices"][0]["delta"]["content"] == "raw"
    as_models = list(client.post("/chat/completions", body=body, cast_to=ChatCompletionChunk, stream=True,
                                 stream_cls=openai.Stream[ChatCompletionChunk]))
    assert all(isinstance(c, ChatCompletionChunk) for c in as_models) and as_models[1].choices[0].delta.content == "raw too"


def handler_threads():
    return {t for t in threading.enumerate() if "process_request_thread" in t.name}


def wait_until_gone(threads, timeout=3):
    deadline = time.monotonic() + timeout
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not any(t.is_alive() for t in threads)


def test_client_hanging_up_mid_stream_is_quiet(server, client, capfd):
    server.add({"content": "y" * 200, "delay": 0.01})
    before = handler_threads()
    with client.chat.completions.create(model="m", messages=USER, stream=True) as s:
        next(iter(s))
    assert wait_until_gone(handler_threads() - before)  # it met the broken pipe and ended
    assert "Traceback" not in capfd.readouterr().err


def test_stop_leaves_no_thread_behind():
    before = set(threading.enumerate())
    srv = ScriptedServer(["one", "two"]).start()
    c = OpenAI(api_key="test", base_url=srv.url, max_retries=0)
    stream(c)
    c.chat.completions.create(model="m", messages=USER)  # the client would keep this connection alive
    url = srv.url
    srv.stop()
    srv.stop()  # twice is harmless
    assert wait_until_gone(set(threading.enumerate()) - before)  # no idle connection holds a thread
    with pytest.raises(openai.APIConnectionError):
        OpenAI(api_key="test", base_url=url, max_retries=0).models.list()


def test_replies_from_the_constructor_and_context_manager():
    with ScriptedServer(["first", {"content": "second"}], chunk_size=2) as srv:
        c = OpenAI(api_key="test", base_url=srv.url, max_retries=0)
        assert [c.chat.completions.create(model="m", messages=USER).choices[0].message.content
                for _ in range(2)] == ["first", "second"]
    with pytest.raises(RuntimeError, match="not started"):
        ScriptedServer().url


def test_command_line_serves_a_json_file(tmp_path):
    command = [str(Path(__file__).with_name("scripted.py"))]
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(["from the file", {"content": "second"}]))
    proc = subprocess.Popen([sys.executable, *command, str(script)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[2]
        c = OpenAI(api_key="test", base_url=url, max_retries=0)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream(c))
        assert text == "from the file"  # the package's server streams every answer
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=5)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    assert proc.returncode == 0 and "Traceback" not in err
