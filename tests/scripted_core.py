"""A scripted OpenAI-compatible server on 127.0.0.1, the model of the tests (tests/scripted.py adds providers'
dialects and faults): each request streams the next reply of a queue; the SDK, agent and tools run for real.
A reply is a string, a dict or a callable(request_body) returning one; dict keys: content, tool_calls [{name,
arguments, id?}], delay (seconds per chunk), finish_reason, usage, headers, status + error (an HTTP error instead).
GET /models lists `models` (None: a provider without the endpoint, a 404); each GET is counted in `listed`."""
import contextlib
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NO_REPLY = "scripted server: no reply left for this request"  # a 400: the SDK does not retry it


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 for chunked streams, but every answer closes its connection: no idle
    # keep-alive connection holds a thread after the test (or the demo) is over.
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: tests and the demo own the terminal
        pass

    def do_GET(self):
        server = self.server.scripted
        server.listed += 1
        if self.path.split("?")[0].rstrip("/").endswith("/models") and server.models is not None:
            return self.send(200, server.model_list())
        self.send(404, error_object(404, f"no route {self.path}"))

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self.send(404, error_object(404, f"no route {self.path}"))
        body, server = json.loads(raw or b"{}"), self.server.scripted
        # a client that hangs up (Ctrl+C, a cancelled agent) is no error here
        with contextlib.suppress(ConnectionError):
            server.answer(self, body, server.next_reply(body))

    def send(self, status: int, data, headers=None, content_type="application/json"):
        # data None: the head of a stream, chunked like real providers' (a cut is then an incomplete read)
        raw = data if data is None or isinstance(data, bytes) else json.dumps(data).encode()
        size = {"Transfer-Encoding": "chunked"} if raw is None else {"Content-Length": len(raw)}
        self.send_response(status)
        for key, value in {"Content-Type": content_type, "Connection": "close", **(headers or {}), **size}.items():
            self.send_header(key, str(value))
        self.end_headers()
        self.wfile.write(raw or b"")

    def send_chunk(self, data: bytes):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()  # each event leaves at once: the client draws as it arrives


class ScriptedServer:
    handler = Handler

    def __init__(self, replies=(), *, chunk_size=8, port=0, models=("scripted",)):
        self.replies, self.requests = list(replies), []
        self.models, self.listed = None if models is None else list(models), 0
        self.chunk_size, self.port = max(1, chunk_size), port
        self._lock = threading.Lock()
        self._ids = itertools.count(1)  # tool call ids the replies leave out: call_1, call_2, ...
        self._httpd = None

    def add(self, *replies):
        with self._lock:
            self.replies.extend(replies)

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("ScriptedServer is not started: call start() or use `with`")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "ScriptedServer":
        # Its threads are daemons: a slow stream never holds up stop() or the interpreter's exit.
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        self._httpd.scripted = self
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self):
        if self._httpd:  # a stream still running ends on its own thread; nothing new is accepted
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    __enter__ = start

    def __exit__(self, *exc):
        self.stop()

    def next_reply(self, body: dict) -> dict:
        """Record the request and take the next reply, as a dict: each call with an id and JSON arguments."""
        with self._lock:
            self.requests.append(body)
            reply = self.replies.pop(0) if self.replies else {"status": 400, "error": NO_REPLY}
        reply = reply(body) if callable(reply) else reply  # outside the lock: parallel requests may each wait
        reply = {"content": reply} if isinstance(reply, str) else dict(reply)
        calls = [{**c, "id": c.get("id") or f"call_{next(self._ids)}"} for c in reply.get("tool_calls") or ()]
        reply["tool_calls"] = [{**c, "arguments": json.dumps(c["arguments"])} if isinstance(c.get("arguments"), dict)
                               else c for c in calls]
        return reply

    def model_list(self) -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "scripted"}
                                           for name in self.models]}

    # Below, one part of the answer each: what a subclass overrides to play a provider's dialects and faults.

    def answer(self, http, body: dict, reply: dict):
        if "status" in reply:
            error = error_object(reply["status"], reply.get("error", "scripted error"))
            return http.send(reply["status"], error, reply.get("headers"))
        chunks = [self.chunk(body, delta) for delta in self.deltas(reply)]
        finish = reply.get("finish_reason") or ("tool_calls" if reply["tool_calls"] else "stop")
        chunks.append(self.chunk(body, {}, finish))
        http.send(200, None, reply.get("headers"), "text/event-stream")
        for event in self.events(body, reply, chunks):
            time.sleep(float(reply.get("delay") or 0))
            http.send_chunk(event if isinstance(event, bytes) else event.encode())
        http.send_chunk(b"")  # the zero-size chunk that ends a chunked body

    def deltas(self, reply: dict):
        content, size = reply.get("content") or "", self.chunk_size
        yield {"role": "assistant", "content": ""}
        yield from ({"content": content[i:i + size]} for i in range(0, len(content), size))
        for n, call in enumerate(reply["tool_calls"]):
            yield from ({"tool_calls": [fragment]} for fragment in self.call_fragments(reply, n, call))

    def call_fragments(self, reply: dict, n: int, call: dict) -> list:
        """Keyed by index, as OpenAI sends them: the first names the call, the rest add its arguments."""
        args, size = call.get("arguments") or "", self.chunk_size
        head = {"index": n, "id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": ""}}
        return [head] + [{"index": n, "function": {"arguments": args[i:i + size]}} for i in range(0, len(args), size)]

    def usage(self, body: dict, reply: dict) -> dict:
        text = (reply.get("content") or "") + "".join(c.get("arguments") or "" for c in reply["tool_calls"])
        usage = {"prompt_tokens": len(json.dumps(body.get("messages", []))) // 4, "completion_tokens": len(text) // 4,
                 **(reply.get("usage") or {})}
        return {"total_tokens": usage["prompt_tokens"] + usage["completion_tokens"], **usage}

    def events(self, body: dict, reply: dict, chunks: list) -> list:
        """The chunks as SSE events, and usage on a last one if the request asks (as OpenAI does)."""
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**self.chunk(body, {}), "choices": [], "usage": self.usage(body, reply)})
        return [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]

    def chunk(self, body: dict, delta: dict, finish=None) -> dict:
        return {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", "scripted"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def error_object(status: int, message: str) -> dict:
    return {"error": {"message": message, "type": "scripted", "code": status}}
