"""Provider faults an independent chaos server found (issue 15), each played by the scripted
server to the real openai SDK: whatever a stream does, the client returns a Reply or raises one
LLMError line, and retries every fault that may pass."""
import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nanocoder import events
from nanocoder.llm import LLM, ContextTooLong, LLMError

HI = [{"role": "user", "content": "hi"}]
TEXT = "Hello world, this answer streams in pieces."


def client(server, retries=2, **kwargs):
    llm = LLM("scripted", api_key="k", base_url=server.url, max_retries=retries, **kwargs)
    llm.backoff = 0.01  # the delays are said, not waited for long
    return llm


def ask(llm, messages=HI):
    seen = []
    reply = llm.stream(messages, on_event=seen.append)
    return reply, seen


def retries(seen):
    return [e for e in seen if type(e) is events.Retry]


def sse(data) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


def delta(d):
    return {"id": "x", "choices": [{"index": 0, "delta": d, "finish_reason": None}]}


CORRUPT = {  # a chunk as llmock, fakellm and mock-myna sent it, and what the line calls it
    "unterminated JSON in text": ('data: {"choices": [{"index": 0, "delta": {"content": "hel\n\n', "not JSON"),
    "unterminated JSON in a call": (
        'data: {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\\"a\n\n',
        "not JSON"),
    "not json": ("data: not json\n\n", "not JSON"),
    "delta as a string": (sse({"choices": [{"index": 0, "delta": "hello"}]}), "wrong shape"),
    "choices: [null]": (sse({"choices": [None]}), "wrong shape"),
    "choices as an object": (sse({"choices": {"index": 0, "delta": {"content": "x"}}}), "wrong shape"),
    "tool_calls as a string": (sse(delta({"tool_calls": "read_file"})), "wrong shape"),
    "a call's name as a number": (sse(delta({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": 7}}]})),
                                  "wrong shape"),
    "finish_reason as a list": (sse({"choices": [{"index": 0, "finish_reason": ["stop"]}]}), "wrong shape"),
    "a chunk that is a list": (sse([1, 2]), "wrong shape"),
    "null": (sse("null"), "wrong shape"),
}


@pytest.mark.parametrize("name", CORRUPT)
def test_a_corrupt_chunk_is_retried_like_a_cut_stream(server, name):
    raw, _ = CORRUPT[name]
    server.add({"content": TEXT, "raw_after": 2, "raw": raw}, "made it")
    reply, seen = ask(client(server))
    assert reply.content == "made it" and len(server.requests) == 2
    [retry] = retries(seen)
    assert retry.discarded  # "Hello wo" was streamed before the bad chunk
    assert server.url in retry.message and "retrying in" in retry.message and "shown above" not in retry.message


@pytest.mark.parametrize("name", CORRUPT)
def test_a_corrupt_chunk_that_persists_is_one_line_naming_the_provider(server, name):
    raw, what = CORRUPT[name]
    server.add(*[{"content": TEXT, "raw_after": 1, "raw": raw}] * 2)
    with pytest.raises(LLMError) as e:
        ask(client(server, retries=1))
    line = str(e.value)
    assert "\n" not in line and line.startswith(f"{server.url} sent a chunk") and what in line
    assert line.endswith("gave up after 1 retry") and raw.strip()[6:30] in line  # quotes what came


def test_bytes_that_are_not_utf8_are_replaced_not_raised(server):
    raw = b'data: {"choices": [{"index": 0, "delta": {"content": "\xff\xfe!"}}]}\n\n'
    server.add({"content": TEXT, "raw_after": 2, "raw": raw})
    reply, seen = ask(client(server))
    assert "\ufffd\ufffd!" in reply.content and not retries(seen)


@given(chunk=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                              st.sampled_from(["choices", "delta", "content", "tool_calls", "function", "index",
                                               "arguments", "name", "id", "usage", "finish_reason", "error"]),
                              inner, max_size=4), max_leaves=12))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_chunk_raises_anything_but_llm_error(server, chunk):
    server.add({"content": TEXT, "raw_after": 1, "raw": sse(chunk)})
    try:
        reply = client(server, retries=0).stream(HI, on_event=lambda e: None)
    except LLMError as e:
        assert "\n" not in str(e)
    else:
        assert isinstance(reply.finish_reason, str) and isinstance(reply.content, str)
        assert all(isinstance(x, str) for c in reply.tool_calls for x in (c.id, c.name, c.arguments))


@pytest.mark.parametrize("fault", [{"drop_after": 0}, {"drop_after": 1}, {"drop_after": 3},
                                   {"stall_after": 0, "stall": 5}, {"stall_after": 2, "stall": 5}],
                         ids=["drop after the headers", "drop after the first chunk", "drop after text",
                              "silence before the first chunk", "silence after text"])
def test_a_fault_before_the_reply_is_complete_is_retried_wherever_it_comes(server, fault):
    server.add({"content": TEXT, **fault}, "made it")
    reply, seen = ask(client(server, timeout=0.5))
    assert reply.content == "made it" and len(server.requests) == 2
    [retry] = retries(seen)
    assert retry.discarded == (fault.get("drop_after", fault.get("stall_after")) > 1)  # text came before it
    assert ("sent nothing for 0.5 s" if "stall" in fault else "broke off") in retry.message


@pytest.mark.parametrize("body", ["", ": keep-alive\n\n"])
def test_an_event_stream_that_ends_before_its_first_chunk_was_cut_short(server, body):
    empty = {"body": body, "content_type": "text/event-stream"}
    server.add(empty, "made it", empty, empty)
    reply, seen = ask(client(server))
    assert reply.content == "made it" and "ended before the reply was complete; retrying" in retries(seen)[0].message
    with pytest.raises(LLMError, match="ended before the reply was complete; gave up after 1 retry$"):
        ask(client(server, retries=1))


def test_a_consumers_own_error_is_not_taken_for_a_provider_fault(server):
    server.add(TEXT, TEXT)  # a second reply for a retry that must not come

    def broken_view(event):
        raise AttributeError("the view's own bug")
    with pytest.raises(AttributeError, match="the view's own bug"):
        client(server).stream(HI, on_event=broken_view)
    assert len(server.requests) == 1  # not retried, not reworded as "a chunk of the wrong shape"


def test_a_cut_after_the_finish_reason_keeps_the_reply(server):
    # role, 2 text chunks, the finish chunk, then the cut: the usage chunk and [DONE] never come
    server.add({"content": "complete answer", "drop_after": 4})
    reply, seen = ask(client(server))
    assert (reply.content, reply.finish_reason) == ("complete answer", "stop")
    assert len(server.requests) == 1 and not retries(seen)


def test_an_error_object_mid_stream_is_retried_and_a_context_error_is_not(server):
    server.add({"content": TEXT, "error_after": 2, "error": "upstream overloaded"}, "made it",
               {"content": TEXT, "error_after": 1, "error": "This model's maximum context length is 8192 tokens"})
    reply, seen = ask(client(server))
    assert reply.content == "made it" and "error mid-stream; retrying" in retries(seen)[0].message
    with pytest.raises(ContextTooLong):
        ask(client(server))


@pytest.mark.parametrize("finish, content", [("length", "The fix is to change the"), ("content_filter", ""),
                                             ("stop", "")])
def test_the_finish_reason_is_kept_as_the_provider_said_it(server, llm, finish, content):
    server.add({"content": content, "finish_reason": finish})
    reply, _ = ask(llm)
    assert (reply.content, reply.finish_reason, reply.tool_calls) == (content, finish, [])


def test_a_tool_call_cut_by_the_token_limit_is_identifiable(server, llm):
    server.add({"tool_calls": [{"name": "read_file", "arguments": {"file_path": "a.py"}},
                               {"name": "write_file", "arguments": '{"file_path": "b.py", "content": "def f'}],
                "finish_reason": "length"})
    reply, _ = ask(llm)
    assert reply.finish_reason == "length" and [c.name for c in reply.tool_calls] == ["read_file", "write_file"]
    assert reply.tool_calls[1].arguments == '{"file_path": "b.py", "content": "def f'  # not JSON: cut
    assert reply.message()["tool_calls"][1]["function"]["arguments"] == "{}"  # the history stays valid


WHOLE = json.dumps({"id": "chatcmpl-1", "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]})


@pytest.mark.parametrize("body, content_type, said", [
    (WHOLE, "application/json", "with application/json, not an event stream; its body began '{\"id\": \"chatcmpl-1\""),
    ("<!DOCTYPE html>\n<html><body>Bad gateway</body></html>", "text/html; charset=utf-8",
     "with text/html; charset=utf-8, not an event stream; its body began '<!DOCTYPE html> <html><body>Bad"),
    ("", "application/json", "with application/json, not an event stream; its body was empty"),
    ("data: [DONE]\n\n", "text/event-stream", "with text/event-stream, but no reply in it; its body began 'data: [DONE]'"),
], ids=["whole JSON reply", "HTML page", "empty body", "only [DONE]"])
def test_a_200_that_is_no_event_stream_is_one_line_at_once(server, body, content_type, said):
    server.add(*[{"body": body, "content_type": content_type}] * 3)
    llm, seen = client(server), []
    with pytest.raises(LLMError) as e:
        llm.stream(HI, on_event=seen.append)
    assert str(e.value).startswith(f"{server.url} answered 200 {said}") and "\n" not in str(e.value)
    assert len(server.requests) == 1 and seen == []  # not retried: asking again would get the same


def test_a_retry_after_longer_than_the_client_waits_is_said_with_no_retry_made(server):
    server.add({"status": 429, "error": "slow down", "headers": {"Retry-After": "300"}})
    llm, seen = client(server, retries=3), []
    with pytest.raises(LLMError) as e:
        llm.stream(HI, on_event=seen.append)
    assert str(e.value) == "rate limited by the provider (429): slow down; asked to wait 300 s; not waiting"
    assert len(server.requests) == 1 and seen == []
    server.add({"status": 503, "error": "busy", "headers": {"retry-after-ms": "10"}},
               {"status": 503, "error": "busy", "headers": {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}})
    with pytest.raises(LLMError, match=r"answered 503: busy; asked to wait \d+ s; not waiting \(after 1 retry\)$"):
        llm.stream(HI, on_event=seen.append)
    assert [e.message for e in seen] == ["the provider answered 503; retrying in 0.0 s (retry 1 of 3)"]


@pytest.mark.parametrize("usage_in", ["final", "every", "choice"])
@pytest.mark.parametrize("dialect", ["openai", "deepseek"])
def test_cached_tokens_in_either_dialect(server, llm, dialect, usage_in):
    server.add({"content": "hi", "usage": {"prompt_tokens": 100, "completion_tokens": 2},
                "cached_tokens": 64, "cache_dialect": dialect, "usage_in": usage_in})
    reply, _ = ask(llm)
    assert (reply.prompt_tokens, reply.cached_tokens, reply.completion_tokens) == (100, 64, 2)


def test_concurrent_streams_on_one_client_keep_their_own_events(server):
    both_asked, first = threading.Barrier(2, timeout=5), set()

    def reply(body):  # each thread's first request waits for the other's, so both are in flight
        who = body["messages"][0]["content"]
        if who not in first:
            first.add(who)
            both_asked.wait()
            if who == "A":
                return {"status": 503, "error": "busy", "headers": {"retry-after-ms": "10"}}
        return {"content": f"answer for {who} " * 4, "delay": 0.002}

    server.add(*[reply] * 3)
    llm, results = client(server), {}

    def run(who):
        results[who] = ask(llm, [{"role": "user", "content": who}])

    threads = [threading.Thread(target=run, args=(who,)) for who in "AB"]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for who in "AB":
        reply, seen = results[who]
        assert reply.content == f"answer for {who} " * 4
        assert "".join(e.text for e in seen if type(e) is events.Text) == reply.content
    assert len(retries(results["A"][1])) == 1 and retries(results["B"][1]) == []
