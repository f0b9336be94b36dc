"""A scripted OpenAI-compatible server on 127.0.0.1: the model for tests and for `--demo`.

Each chat-completions request takes the next reply from a queue and streams it as SSE, the way
real providers do, so everything else (the openai SDK, the agent, the tools) runs for real.

A reply is a string (text), a dict, or a callable(request_body) -> string or dict. Dict keys:
  content, reasoning (streamed as reasoning_content), tool_calls [{name, arguments, id?}],
  delay (seconds before each chunk), status + error (an HTTP error instead), headers,
  drop_after (close the socket after that many chunks), finish_reason, usage.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    def __init__(self, replies=(), *, chunk_size=8, port=0):
        self.replies, self.requests = list(replies), []
        self.chunk_size, self.port = chunk_size, port
        self._lock = threading.Lock()
        self._calls = 0
        self._httpd = None

    def add(self, *replies):
        with self._lock:
            self.replies.extend(replies)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "ScriptedServer":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self):
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    __enter__ = start

    def __exit__(self, *exc):
        self.stop()

    def next_reply(self, body: dict):
        with self._lock:
            self.requests.append(body)
            reply = self.replies.pop(0) if self.replies else {
                "status": 400, "error": "scripted server: no reply left for this request"}
        if callable(reply):
            reply = reply(body)
        return {"content": reply} if isinstance(reply, str) else dict(reply)

    def new_call_id(self) -> str:
        with self._lock:
            self._calls += 1
            return f"call_{self._calls}"


def _handler(server: ScriptedServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: tests and the demo own the terminal
            pass

        def do_GET(self):
            if self.path.rstrip("/").endswith("/models"):
                return self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            reply = server.next_reply(body)
            if "status" in reply:
                error = {"message": reply.get("error", "scripted error"), "type": "scripted", "code": reply["status"]}
                return self._json(reply["status"], {"error": error}, reply.get("headers", {}))
            calls = [{"id": c.get("id") or server.new_call_id(), "name": c["name"],
                      "arguments": c["arguments"] if isinstance(c["arguments"], str) else json.dumps(c["arguments"])}
                     for c in reply.get("tool_calls", [])]
            content = reply.get("content") or ""
            usage = reply.get("usage") or {
                "prompt_tokens": len(json.dumps(body.get("messages", []))) // 4,
                "completion_tokens": len(content + "".join(c["arguments"] for c in calls)) // 4}
            usage.setdefault("total_tokens", usage["prompt_tokens"] + usage["completion_tokens"])
            finish = reply.get("finish_reason") or ("tool_calls" if calls else "stop")
            try:
                if body.get("stream"):
                    self._stream(body, reply, content, calls, usage, finish)
                else:
                    self._json(200, _completion(body, reply, content, calls, usage, finish))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client hung up (Ctrl+C, a timeout): nothing left to say

        def _json(self, status, data, headers=()):
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in dict(headers).items():
                self.send_header(key, str(value))
            self.end_headers()
            self.wfile.write(raw)

        def _stream(self, body, reply, content, calls, usage, finish):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            deltas = list(_deltas(reply.get("reasoning") or "", content, calls, server.chunk_size))
            chunks = [_chunk(body, d) for d in deltas] + [_chunk(body, {}, finish)]
            if (body.get("stream_options") or {}).get("include_usage"):
                chunks.append({**_chunk(body, {}), "choices": [], "usage": usage})
            drop_after = reply.get("drop_after")
            for n, chunk in enumerate(chunks):
                if drop_after is not None and n >= drop_after:
                    self.connection.shutdown(2)  # an abrupt end: no finish reason, no [DONE]
                    return
                time.sleep(reply.get("delay", 0))
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


def _deltas(reasoning, content, calls, size):
    yield {"role": "assistant", "content": ""}
    for i in range(0, len(reasoning), size):
        yield {"reasoning_content": reasoning[i:i + size]}
    for i in range(0, len(content), size):
        yield {"content": content[i:i + size]}
    for index, call in enumerate(calls):
        yield {"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                               "function": {"name": call["name"], "arguments": ""}}]}
        args = call["arguments"]
        for i in range(0, len(args), size):
            yield {"tool_calls": [{"index": index, "function": {"arguments": args[i:i + size]}}]}


def _chunk(body, delta, finish=None):
    return {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _completion(body, reply, content, calls, usage, finish):
    message = {"role": "assistant", "content": content or None}
    if calls:
        message["tool_calls"] = [{"id": c["id"], "type": "function",
                                  "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]
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
