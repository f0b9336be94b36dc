"""A scripted OpenAI-compatible server on 127.0.0.1: the model for tests and for `--demo`.

Each chat-completions request takes the next reply from a queue and streams it as SSE, the way
real providers do, so everything else (the openai SDK, the agent, the tools) runs for real.

A reply is a string (text), a dict, or a callable(request_body) -> string or dict. Dict keys:
  content, reasoning, tool_calls [{name, arguments, id?, any extra field}],
  delay (seconds before each chunk), status + error (an HTTP error instead), headers,
  finish_reason, usage, and the dialects and faults of real providers:
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
Server options: reject=("stream_options",) answers 400 to any request carrying those fields.
Stdlib only; importing this module starts nothing.
"""
import itertools
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NO_REPLY = "scripted server: no reply left for this request"  # a 400: the SDK does not retry it
DIALECTS = {
    "standard": "fragments keyed by index; the first names the call, the rest add arguments",
    "whole": "each call complete in one delta (Ollama, some vLLM parsers)",
    "repeat": "id, type and name repeated on every fragment",
    "same_index": "every call at index 0, told apart only by its id",
    "index_from_1": "indexes start at 1",
    "empty_id": 'continuation fragments carry id ""',
    "resend": "a last chunk re-sends each call's complete arguments",
    "text": "calls written in the content as <tool_call>{...}</tool_call> (local models)",
}


class ScriptedServer:
    def __init__(self, replies=(), *, chunk_size=8, port=0, reject=()):
        self.replies, self.requests, self.reject = list(replies), [], set(reject)
        self.chunk_size, self.port = max(1, chunk_size), port
        self._lock = threading.Lock()
        self._ids = itertools.count(1)  # tool call ids the replies leave out: call_1, call_2, ...
        self._httpd = self._thread = None

    def add(self, *replies):
        with self._lock:
            self.replies.extend(replies)

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("ScriptedServer is not started: call start() or use `with`")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "ScriptedServer":
        self._httpd = _HTTPServer(("127.0.0.1", self.port), _handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name="scripted-server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        httpd, self._httpd = self._httpd, None
        if httpd:  # a stream still running ends on its own thread; nothing new is accepted
            httpd.shutdown()
            httpd.server_close()
            self._thread.join()

    __enter__ = start

    def __exit__(self, *exc):
        self.stop()

    def next_reply(self, body: dict) -> dict:
        """Record the request and take the next reply, as a dict."""
        with self._lock:
            self.requests.append(body)
            reply = self.replies.pop(0) if self.replies else {"status": 400, "error": NO_REPLY}
        if callable(reply):  # outside the lock: parallel sub-agents' requests may each wait in one
            try:
                reply = reply(body)
            except Exception as e:  # a 400 the failing test can read, not a lost traceback
                reply = {"status": 400, "error": f"scripted server: reply raised {type(e).__name__}: {e}"}
        return {"content": reply} if isinstance(reply, str) else dict(reply)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a slow scripted stream must never hold up stop() or interpreter exit

    def handle_error(self, request, client_address):
        # A client that hangs up (Ctrl+C, a cancelled agent) is normal here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(server: ScriptedServer):
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 for chunked streams, but every answer closes its connection: no idle
        # keep-alive connection holds a thread after the test (or the demo) is over.
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: tests and the demo own the terminal
            pass

        def do_GET(self):
            if self.path.rstrip("/").endswith("/models"):
                return self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
            self._json(404, _error(404, f"no route {self.path}"))

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self._json(404, _error(404, f"no route {self.path}"))
            body = json.loads(raw or b"{}")
            # a provider that knows fewer fields: the request is refused, no reply used
            if rejected := server.reject & body.keys():
                with server._lock:
                    server.requests.append(body)
                return self._json(400, _error(400, f"Unrecognized request argument supplied: {', '.join(rejected)}"))
            reply = server.next_reply(body)
            if reply.get("reset"):
                return self.connection.shutdown(socket.SHUT_RDWR)
            if "status" in reply:
                error = _error(reply["status"], reply.get("error", "scripted error"))
                return self._json(reply["status"], error, reply.get("headers"))
            if "body" in reply:
                body = reply["body"] if isinstance(reply["body"], bytes) else reply["body"].encode()
                return self._send(200, body, reply.get("content_type", "application/json"), reply.get("headers"))
            calls = [{**c, "id": c.get("id") or f"call_{next(server._ids)}"} for c in reply.get("tool_calls") or []]
            for c in calls:
                if isinstance(c.get("arguments"), dict):
                    c["arguments"] = json.dumps(c["arguments"])
            content = reply.get("content") or ""
            if reply.get("dialect") == "text":
                content += "".join(f'<tool_call>{{"name": "{c["name"]}", "arguments": {c.get("arguments") or "{}"}}}</tool_call>'
                                   for c in calls)
                calls = []
            usage = {"prompt_tokens": len(json.dumps(body.get("messages", []))) // 4,
                     "completion_tokens": len(content + "".join(c.get("arguments") or "" for c in calls)) // 4}
            usage.update(reply.get("usage") or {})  # a copy: a reply reused twice stays as written
            if cached := reply.get("cached_tokens"):
                if reply.get("cache_dialect") == "deepseek":
                    usage.update(prompt_cache_hit_tokens=cached, prompt_cache_miss_tokens=usage["prompt_tokens"] - cached)
                else:
                    usage["prompt_tokens_details"] = {"cached_tokens": cached}
            usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
            finish = reply.get("finish_reason") or ("tool_calls" if calls else "stop")
            if not body.get("stream"):
                return self._json(200, _completion(body, content, calls, usage, finish), reply.get("headers"))
            self._stream(_events(body, reply, content, calls, usage, finish, server.chunk_size), reply)

        def _start(self, status, content_type, headers):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Connection", "close")
            self.close_connection = True
            for key, value in (headers or {}).items():
                self.send_header(key, str(value))

        def _json(self, status, data, headers=None):
            self._send(status, json.dumps(data).encode(), "application/json", headers)

        def _send(self, status, raw: bytes, content_type, headers=None):
            self._start(status, content_type, headers)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _stream(self, events, reply):
            # Chunked, like real providers: a connection cut mid-body is then an incomplete read
            # the client can detect, where a plain close would look like a normal end.
            self._start(200, "text/event-stream", reply.get("headers"))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            delay = float(reply.get("delay") or 0)
            for n, event in enumerate(events):
                if n == reply.get("drop_after"):
                    # An abrupt end: no finish reason, no [DONE], no closing zero-size chunk.
                    return self.connection.shutdown(socket.SHUT_RDWR)
                if n == reply.get("stall_after"):
                    time.sleep(float(reply.get("stall", 3600)))
                if n == reply.get("error_after"):
                    event = f"data: {json.dumps(_error(500, reply.get('error', 'scripted stream error')))}\n\n"
                if n == reply.get("raw_after"):
                    event = reply["raw"]
                time.sleep(delay)
                self._send_chunk(event if isinstance(event, bytes) else event.encode())
            self._send_chunk(b"")  # the zero-size chunk that ends a chunked body

        def _send_chunk(self, data: bytes):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()  # each event leaves at once: the client draws as it arrives

    return Handler


def _error(status, message):
    return {"error": {"message": message, "type": "scripted", "code": status}}


def _events(body, reply, content, calls, usage, finish, size):
    """The SSE lines of one streamed reply, in the reply's dialect."""
    usage_in = reply.get("usage_in", "final")
    if not (body.get("stream_options") or {}).get("include_usage") and usage_in == "final":
        usage_in = "none"  # like OpenAI: usage only when asked for
    chunks = [_chunk(body, d) for d in _deltas(reply, content, calls, size)] + [_chunk(body, {}, finish)]
    if usage_in == "every":  # running totals on every chunk
        for n, c in enumerate(chunks, 1):
            c["usage"] = {k: v * n // len(chunks) if isinstance(v, int) else v for k, v in usage.items()}
    elif usage_in == "choice":
        chunks[-1]["choices"][0]["usage"] = usage
    elif usage_in == "final":
        chunks.append({**_chunk(body, {}), "choices": [], "usage": usage})
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks]
    if reply.get("keepalive"):  # between every two events: a comment, no choices, a choice without delta
        noise = [": keep-alive\n\n", f"data: {json.dumps({**_chunk(body, {}), 'choices': []})}\n\n",
                 f"data: {json.dumps({**_chunk(body, {}), 'choices': [{'index': 0}]})}\n\n"]
        lines = [x for n, line in enumerate(lines) for x in (noise[n % 3], line)]
    return lines + ["data: [DONE]\n\n"]


def _deltas(reply, content, calls, size):
    yield {"role": "assistant", "content": ""}
    reasoning, field = reply.get("reasoning") or "", reply.get("reasoning_field", "reasoning_content")
    for i in range(0, len(reasoning), size):
        yield {field: reasoning[i:i + size]}
    for i in range(0, len(content), size):
        piece = content[i:i + size]
        yield {"content": [{"type": "text", "text": piece}] if reply.get("parts") else piece}
    dialect = reply.get("dialect", "standard")
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    for n, call in enumerate(calls):
        index = {"same_index": 0, "index_from_1": n + 1}.get(dialect, n)
        extra = {k: v for k, v in call.items() if k not in ("id", "name", "arguments")}
        head = {"index": index, "id": call["id"], "type": "function", **extra}
        # arguments may be missing, null or "" for a call without parameters: sent as they are
        function = {k: call[k] for k in ("name", "arguments") if k in call}
        args = call.get("arguments") or ""
        if dialect == "whole" or not args:
            yield {"tool_calls": [{**head, "function": function}]}
            continue
        yield {"tool_calls": [{**head, "function": {"name": call["name"], "arguments": ""}}]}
        for i in range(0, len(args), size):
            piece = {"index": index, "function": {"arguments": args[i:i + size]}}
            if dialect == "repeat":
                piece = {**head, "function": {"name": call["name"], "arguments": args[i:i + size]}}
            elif dialect in ("empty_id", "same_index"):
                piece["id"] = "" if dialect == "empty_id" else call["id"]
            yield {"tool_calls": [piece]}
        if dialect == "resend":
            yield {"tool_calls": [{"index": index, "function": {"arguments": args}}]}


def _chunk(body, delta, finish=None):
    return {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _completion(body, content, calls, usage, finish):
    message = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = [{"id": c["id"], "type": "function",
                                  "function": {"name": c["name"], "arguments": c.get("arguments") or "{}"}}
                                 for c in calls]
    return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "scripted"), "usage": usage,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}]}


def main(argv=None):
    """python -m nanocoder.scripted REPLIES.json [--port N]: serve a JSON list of replies by hand."""
    import argparse
    p = argparse.ArgumentParser(prog="python -m nanocoder.scripted")
    p.add_argument("replies", help="a JSON file holding a list of replies (strings or objects)")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    with open(args.replies, encoding="utf-8") as f:
        server = ScriptedServer(json.load(f), port=args.port).start()
    print(f"serving on {server.url} (OPENAI_BASE_URL); Ctrl+C stops", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
