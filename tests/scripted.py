"""The tests' scripted server: scripted_core's, plus the dialects and faults of real providers.

Reply keys on top of the core's (content, tool_calls, delay, finish_reason, usage, headers, status + error):
  reasoning    thinking text, sent before the content
  tool_calls   may carry any extra field, sent along (Gemini's extra_content); arguments may be missing or null
  dialect      how tool calls are streamed, see DIALECTS
  usage_in     "final" (default), "every" chunk as running totals, "choice" (in choices[0]), "none"
  reasoning_field  "reasoning_content" (default, DeepSeek, Kimi) or "reasoning" (OpenRouter, Ollama)
  parts        content sent as a list of {"type": "text"} parts
  keepalive    ": keep-alive" comment lines and chunks with empty choices or no delta between events
  drop_after   cut the connection after that many events
  stall_after + stall   go silent for `stall` seconds after that many events
  error_after  send an error object inside the stream after that many events
  raw_after + raw   send `raw` (text or bytes, as is) in place of the event at that position
  body + content_type   a 200 with this body instead of an event stream
  reset        close the connection before answering anything
  cached_tokens + cache_dialect  cached prompt tokens, in "openai"'s usage field (default;
               also Kimi, OpenRouter, vLLM) or "deepseek"'s
A request with "stream": false gets one chat.completion. Server options: reject=("stream_options",) answers
400 to any request carrying those fields; GET /models is the core's.
Run as a script (`python tests/scripted.py REPLIES.json`) it serves a file of replies by hand.
"""
import contextlib
import json
import socket
import threading
import time

import scripted_core

DIALECTS = {
    "standard": "fragments keyed by index; the first names the call, the rest add arguments",
    "whole": "each call complete in one delta (Ollama, some vLLM parsers)",
    "repeat": "id, type and name repeated on every fragment",
    "same_index": "every call at index 0, told apart only by its id",
    "index_from_1": "indexes start at 1",
    "empty_id": 'continuation fragments carry id ""',
    "resend": "a last chunk re-sends each call's complete arguments",
}

Handler = scripted_core.Handler  # what tests subclass to record more of each request


class ScriptedServer(scripted_core.ScriptedServer):
    def __init__(self, replies=(), *, reject=(), **options):
        super().__init__(replies, **options)
        self.reject = set(reject)

    def next_reply(self, body: dict) -> dict:
        if rejected := self.reject & body.keys():  # a provider that knows fewer fields: refused, no reply used
            with self._lock:
                self.requests.append(body)
            return {"status": 400, "error": f"Unrecognized request argument supplied: {', '.join(rejected)}"}
        try:
            reply = super().next_reply(body)
        except Exception as e:  # a callable reply that failed: a 400 the failing test can read, not a lost traceback
            return {"status": 400, "error": f"scripted server: reply raised {type(e).__name__}: {e}"}
        dialect = reply.get("dialect", "standard")
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
        return reply

    def answer(self, http, body: dict, reply: dict):
        if reply.get("reset"):
            return http.connection.shutdown(socket.SHUT_RDWR)
        if "status" in reply or ("body" not in reply and body.get("stream")):
            return super().answer(http, body, reply)
        if "body" in reply:
            raw = reply["body"] if isinstance(reply["body"], bytes) else reply["body"].encode()
            return http.send(200, raw, reply.get("headers"), reply.get("content_type", "application/json"))
        calls = reply["tool_calls"]
        message = {"role": "assistant", "content": reply.get("content") or None}
        if calls:
            message["tool_calls"] = [{"id": c["id"], "type": "function",
                                      "function": {"name": c["name"], "arguments": c.get("arguments") or "{}"}}
                                     for c in calls]
        finish = reply.get("finish_reason") or ("tool_calls" if calls else "stop")
        http.send(200, {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
                        "model": body.get("model", "scripted"), "usage": self.usage(body, reply),
                        "choices": [{"index": 0, "message": message, "finish_reason": finish}]}, reply.get("headers"))

    def deltas(self, reply: dict):
        deltas = super().deltas(reply)
        yield next(deltas)  # the role
        reasoning, field = reply.get("reasoning") or "", reply.get("reasoning_field", "reasoning_content")
        for i in range(0, len(reasoning), self.chunk_size):
            yield {field: reasoning[i:i + self.chunk_size]}
        for delta in deltas:
            if reply.get("parts") and "content" in delta:
                delta = {"content": [{"type": "text", "text": delta["content"]}]}
            yield delta

    def call_fragments(self, reply: dict, n: int, call: dict) -> list:
        dialect = reply.get("dialect", "standard")
        index = {"same_index": 0, "index_from_1": n + 1}.get(dialect, n)
        extra = {k: v for k, v in call.items() if k not in ("id", "name", "arguments")}
        head = {"index": index, "id": call["id"], "type": "function", **extra}
        if dialect == "whole" or not call.get("arguments"):  # arguments missing, null or "" are sent as they are
            return [{**head, "function": {k: call[k] for k in ("name", "arguments") if k in call}}]
        first, *pieces = super().call_fragments(reply, n, call)
        fragments = [{**head, "function": first["function"]}]
        for piece in pieces:
            piece["index"] = index
            if dialect == "repeat":
                piece = {**head, "function": {"name": call["name"], **piece["function"]}}
            elif dialect in ("empty_id", "same_index"):
                piece["id"] = "" if dialect == "empty_id" else call["id"]
            fragments.append(piece)
        if dialect == "resend":
            fragments.append({"index": index, "function": {"arguments": call["arguments"]}})
        return fragments

    def usage(self, body: dict, reply: dict) -> dict:
        usage = super().usage(body, reply)
        if cached := reply.get("cached_tokens"):
            if reply.get("cache_dialect") == "deepseek":
                usage.update(prompt_cache_hit_tokens=cached, prompt_cache_miss_tokens=usage["prompt_tokens"] - cached)
            else:
                usage["prompt_tokens_details"] = {"cached_tokens": cached}
        return usage

    def events(self, body: dict, reply: dict, chunks: list) -> list:
        where, usage = reply.get("usage_in", "final"), self.usage(body, reply)
        if where == "every":  # running totals on every chunk
            for n, c in enumerate(chunks, 1):
                c["usage"] = {k: v * n // len(chunks) if isinstance(v, int) else v for k, v in usage.items()}
        elif where == "choice":
            chunks[-1]["choices"][0]["usage"] = usage
        *lines, done = super().events(body if where == "final" else {}, reply, chunks)  # {}: no usage chunk
        if reply.get("keepalive"):  # between every two events: a comment, no choices, a choice without delta
            noise = [": keep-alive\n\n", f"data: {json.dumps({**self.chunk(body, {}), 'choices': []})}\n\n",
                     f"data: {json.dumps({**self.chunk(body, {}), 'choices': [{'index': 0}]})}\n\n"]
            lines = [x for n, line in enumerate(lines) for x in (noise[n % 3], line)]
        return self.faults(reply, lines + [done])

    def faults(self, reply: dict, events: list):
        for n, event in enumerate(events):
            if n == reply.get("drop_after"):  # an abrupt end: no finish reason, no [DONE], no zero-size chunk
                raise ConnectionAbortedError("scripted drop")
            if n == reply.get("stall_after"):
                time.sleep(float(reply.get("stall", 3600)))
            if n == reply.get("error_after"):
                error = scripted_core.error_object(500, reply.get("error", "scripted stream error"))
                event = f"data: {json.dumps(error)}\n\n"
            if n == reply.get("raw_after"):
                event = reply["raw"]
            yield event


def main(argv=None):
    """python tests/scripted.py REPLIES.json [--port N]: serve a JSON list of replies by hand."""
    import argparse
    p = argparse.ArgumentParser(prog="python tests/scripted.py")
    p.add_argument("replies", help="a JSON file holding a list of replies (strings or objects)")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    with open(args.replies, encoding="utf-8") as f, ScriptedServer(json.load(f), port=args.port) as running:
        print(f"serving on {running.url} (OPENAI_BASE_URL); Ctrl+C stops", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
